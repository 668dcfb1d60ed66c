"""The thesis's results table (test accuracy / average test loss), as data, to print ours beside it."""

from __future__ import annotations

# (model, norm) -> {epochs: (accuracy, loss)}. Norm keys match our registry: bn, bcn, bcn_ws; None for no choice.
THESIS_RESULTS: dict[tuple[str, str | None], dict[int, tuple[float, float]]] = {
    ("model1", "bcn"): {30: (0.8094, 0.4308), 50: (0.8531, 0.3441), 80: (0.8250, 0.4821)},
    ("model1", "bcn_ws"): {30: (0.9094, 0.2841), 50: (0.9250, 0.3385), 80: (0.8813, 0.3197)},
    ("model1", "bn"): {30: (0.9156, 0.4445), 50: (0.9250, 0.1953), 80: (0.8938, 0.4326)},
    ("model2", "bcn"): {30: (0.8969, 0.5726), 50: (0.8250, 0.6371), 80: (0.8938, 0.6283)},
    ("model2", "bcn_ws"): {30: (0.9500, 0.3808), 50: (0.8250, 0.5707), 80: (0.8219, 0.5024)},
    ("model2", "bn"): {30: (0.9062, 0.5617), 50: (0.9188, 0.5138), 80: (0.9456, 0.4063)},
    ("model3", None): {30: (0.9910, 0.0312), 50: (0.9910, 0.0763), 80: (0.9840, 0.1288)},
    ("vgg16", None): {30: (0.9031, 0.3880), 50: (0.9031, 0.3829), 80: (0.9094, 0.3940)},
    ("resnet18", None): {30: (0.8938, 0.4419), 50: (0.8000, 0.5204), 80: (0.8281, 0.5114)},
    ("alexnet", None): {30: (0.9531, 0.1674), 50: (0.9438, 0.1752), 80: (0.9344, 0.1708)},
}
THESIS_TEST_SIZE = 320
THESIS_EPOCHS = (30, 50, 80)
NORM_NAMES = {"bn": "BatchNorm", "bcn": "BatchGroup (BCN)", "bcn_ws": "BatchGroup + WS", None: "-"}


def thesis_result(model: str, norm: str | None, epochs: int) -> tuple[float, float] | None:
    return THESIS_RESULTS.get((model, norm), {}).get(epochs)


def thesis_epochs_for(epochs: int, budgets: list[int]) -> int | None:
    """The thesis budget to compare with: the same epochs, else the one of the same rank (quick: 3/5/8 -> 30/50/80)."""
    if epochs in THESIS_EPOCHS:
        return epochs
    budgets = sorted(budgets)
    if len(budgets) == len(THESIS_EPOCHS) and epochs in budgets:
        return THESIS_EPOCHS[budgets.index(epochs)]
    return None


def thesis_comparison(model: str, norm: str | None, epochs: int, budgets: list[int]) -> dict[str, float | int] | None:
    """The thesis's result to show beside ours (its budget, accuracy, loss and Wilson 95% interval on its
    320 test images, at exactly the accuracy it reports: 99.10% is not a whole count of 320), or None where
    the thesis has no comparable cell. The one place this is computed."""
    from benchmark.metrics import wilson_ci

    te = thesis_epochs_for(epochs, budgets)
    th = thesis_result(model, norm, te) if te else None
    if th is None:
        return None
    lo, hi = wilson_ci(th[0] * THESIS_TEST_SIZE, THESIS_TEST_SIZE)
    return {"thesis_epochs": te, "thesis_accuracy": th[0], "thesis_loss": th[1], "thesis_ci_low": lo, "thesis_ci_high": hi}
