"""Training protocols: `thesis` (the study's exact grid) and `quick` (the same models at CPU-friendly settings)."""

from __future__ import annotations

from dataclasses import dataclass

from lrfp.errors import BenchUsageError


@dataclass(frozen=True)
class Protocol:
    name: str
    epochs: int  # one run of this many epochs per model x config x seed ...
    eval_epochs: tuple[int, ...]  # ... evaluated on test after each of these (the lr is constant, so this equals separate runs)
    batch_size: int = 64
    lr: float = 0.001
    momentum: float = 0.9  # SGD only; the thesis names none: PyTorch's tutorials pair lr 0.001 with 0.9
    seeds: int = 3
    rotation_degrees: float = 15.0  # the thesis says "random rotation" without a range: ours
    rotation_interpolation: str = "nearest"  # nor its sampling: torchvision RandomRotation's default (data.py)
    quick_inputs: bool = False  # use each model's quick_input_size instead of the thesis's input
    summary: str = ""

    def budgets(self, epochs: int | None) -> tuple[int, tuple[int, ...]]:
        """(epochs to train, epochs to evaluate at) with `--epochs` applied: budgets below it, and it."""
        if epochs is None:
            return self.epochs, self.eval_epochs
        if epochs < 1:
            raise BenchUsageError(f"--epochs must be at least 1, not {epochs}")
        return epochs, tuple(sorted({e for e in self.eval_epochs if e < epochs} | {epochs}))


PROTOCOLS: dict[str, Protocol] = {
    "thesis": Protocol(
        name="thesis", epochs=80, eval_epochs=(30, 50, 80), seeds=3,
        summary="the thesis's grid: SGD lr 0.001 (Model 3: Adam), batch 64, inputs 224 (Model 3: 64), "
        "one 80-epoch run per seed evaluated at 30, 50 and 80 epochs",
    ),
    "quick": Protocol(
        name="quick", epochs=8, eval_epochs=(3, 5, 8), seeds=1, quick_inputs=True,
        summary="the same models and optimizers at 64 px inputs (VGG-16: 32), 8 epochs evaluated at 3, 5 and 8 "
        "(the thesis budgets / 10), one seed; sized for a CPU: the whole grid took 3 min 25 s on 2 Xeon cores with "
        "AMX, all of SMFD at 64 px (measured 2026-11-27, docs/measurements.md)",
    ),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise BenchUsageError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
