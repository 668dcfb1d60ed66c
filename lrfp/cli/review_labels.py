"""`lrfp review-labels`: rank labeled crops by how likely their label is wrong (out-of-fold model + cleanlab)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, Seed


def review_labels(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    folds: Annotated[int, typer.Option("--folds", "-k", help="Number of folds, grouped by track/group like `lrfp split`.")] = 5,
    model: Annotated[str, typer.Option("--model", help="Registered model trained per fold (see `lrfp bench --help`).")] = "model3",
    input_size: Annotated[int, typer.Option("--input-size", help="Side in px the crops are resized to.")] = 32,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs per fold.")] = 15,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size (smaller: more steps on few labels).")] = 32,
    group_by: Annotated[str, typer.Option("--group-by", help="Group kept in one fold: track, video or group (as `lrfp split`).")] = "track",
    device: Annotated[str, typer.Option("--device", help="auto (a GPU where present), cpu, cuda or cuda:N.")] = "auto",
    seed: Seed = 0,
    top: Annotated[int, typer.Option("--top", help="How many of the ranked crops to print.")] = 20,
    store_anyway: Annotated[bool, typer.Option("--store-anyway", help=(
        "Store the ranking even when the model does not beat always answering the most frequent label "
        "(by default such a ranking is shown, not stored)."))] = False,
    checkpoint: Annotated[Optional[Path], typer.Option(
        "--checkpoint", help="Not allowed: a model cannot judge its own training data (fold models are trained here).")] = None,
) -> None:
    """Find likely label errors: out-of-fold class probabilities for every labeled crop, ranked by cleanlab.

    Each crop is judged by a model (default Model 3) trained on the other folds only, so no model sees
    the crop, or its track or group, in training. cleanlab's label quality score ranks them (low = likely
    wrong) and flags label issues. The ranking is stored; open it with `lrfp label --queue suspects`.

    Example:
      lrfp review-labels --folds 5 --epochs 15
      lrfp label --queue suspects
    """
    from lrfp.errors import UsageError

    if checkpoint is not None:
        raise UsageError(
            "--checkpoint is not allowed here: a model cannot judge its own training data, and a bench checkpoint "
            "was trained on these labels; review-labels trains its own out-of-fold models (drop --checkpoint; "
            "for suggestions on unlabeled crops use `lrfp predict --checkpoint ...`)"
        )
    if top < 0:
        raise UsageError(f"--top {top}: must be 0 or more")
    from lrfp.cli.console import out
    from lrfp.cli.progress import make_progress
    from lrfp.cli.tables import label_issues_table
    from lrfp.review.oof import OofConfig
    from lrfp.review.run import ReviewConfig, review_labels as run_review
    from lrfp.store import open_store

    cfg = ReviewConfig(folds=folds, group_by=group_by, store_anyway=store_anyway, oof=OofConfig(
        model=model, input_size=input_size, epochs=epochs, batch_size=batch_size, seed=seed, device=device))
    with open_store(data_dir, create=False) as store, make_progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task({"decode": "reading crops", "fold": "training folds"}[stage], total=total)
            progress.update(tasks[stage], completed=done, total=total)

        result = run_review(store, cfg, progress=on_progress)
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    out.print(label_issues_table(result.rows, top, stored=result.stored))
    if result.unreadable:
        shown = ", ".join(str(u["crop_id"]) for u in result.unreadable[:10])
        out.print(f"{len(result.unreadable)} labeled crops left out: file missing or corrupt (crops {shown}"
                  f"{', ...' if len(result.unreadable) > 10 else ''}); mark them unusable with `lrfp label` (x).")
    lo, hi = result.oof_ci95
    judged = (f"{result.n} labeled crops judged out of fold ({folds} folds, {model} at {input_size} px, {epochs} "
              f"epochs; out-of-fold accuracy {result.oof_accuracy:.1%}, 95% interval {lo:.1%}-{hi:.1%})")
    if not result.beats_majority:
        out.print(
            f"Warning: {judged} does not beat always answering {result.majority} ({result.majority_rate:.1%} of "
            f"them): the model has not learned these crops, so its {result.n_issues} \"likely label errors\" are "
            "noise. Train it more (--epochs, --input-size, another --model) or label more crops."
            + ("" if result.stored else " Not stored: the earlier ranking, if any, stays for `lrfp label --queue "
               "suspects` (--store-anyway stores it).")
        )
    if result.stored:
        out.print(f"{judged}; cleanlab flags {result.n_issues} as likely label errors. Stored as run "
                  f"{result.run_id}. Look at them: lrfp label --queue suspects")
