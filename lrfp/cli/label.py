"""`lrfp label`: the keyboard-first labeling app."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, Seed


def label(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    only: Annotated[Optional[str], typer.Option(
        "--only", help="Which crops: unlabeled (default), skipped, or all.")] = None,
    label_: Annotated[Optional[str], typer.Option(
        "--label", help="Only crops currently labeled this (with_mask, without_mask, unusable, skip).")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="Only crops of this source.")] = None,
    shuffle: Annotated[bool, typer.Option("--shuffle", help="Random order (seeded) instead of source and time.")] = False,
    seed: Seed = 0,
    annotator: Annotated[Optional[str], typer.Option(
        "--annotator", help="Who labels (default: the OS user).")] = None,
    review: Annotated[bool, typer.Option(
        "--review", help="Blind second look at crops labeled by someone else (writes review events).")] = False,
    sample: Annotated[Optional[float], typer.Option(
        "--sample", help="With --review: the fraction of those crops to show, e.g. 0.1.")] = None,
    grid: Annotated[bool, typer.Option("--grid", help="Start in the grid view (g toggles).")] = False,
    order: Annotated[str, typer.Option(
        "--order", help="time (source, then time), uncertain (model least sure first) or confident (most sure first).")] = "time",
    queue: Annotated[Optional[str], typer.Option(
        "--queue", help="suspects: the crops `lrfp review-labels` flagged as likely label errors, worst first.")] = None,
    suggestions: Annotated[bool, typer.Option(
        "--suggestions/--no-suggestions", help="Show the model's suggestions from `lrfp predict` (y accepts).")] = True,
) -> None:
    """Label crops with_mask / without_mask in a terminal app, fast, by keyboard.

    Keys: m with mask, n without, x unusable, s or space skip, y accept the model's suggestion (grid: confirm
    the page's suggestions), u or backspace undo, left/right move, g grid, ? help, q quit.

    Where `lrfp predict` stored a prediction for a crop, it is shown as a suggestion ("model: with_mask 0.93");
    a label taken from one is recorded as suggested. `--queue suspects` opens what `lrfp review-labels` flagged.

    Each key is saved at once; rerun to resume at the first unlabeled crop. After --review, `lrfp stats` shows agreement.
    Several sessions may share a store: a crop another session labeled after it was shown here keeps that label.

    Example:
      lrfp label --source lima-01
      lrfp label --review --annotator bob --sample 0.1
      lrfp label --grid --order uncertain
    """
    from lrfp.cli.console import err, out
    from lrfp.errors import NotATerminalError
    from lrfp.label.app import run_label_app
    from lrfp.label.session import LabelConfig, default_annotator

    cfg = LabelConfig(
        annotator=default_annotator() if annotator is None else annotator, only=only, label=label_,
        source=source, shuffle=shuffle, seed=seed, review=review, sample=sample, order=order, queue=queue,
        suggestions=suggestions,
    )
    try:
        result = run_label_app(data_dir, cfg, grid=grid)
    except NotATerminalError as e:
        if out.is_terminal and not err.is_terminal:  # `lrfp label 2>log`: the Error line goes into the log;
            out.print(f"Error: {e}", markup=False, soft_wrap=True)  # say it where the user is looking too
        raise
    interrupts.work_done()  # stored: a signal now would only cut the summary short
    if result.summary is None:
        out.print(result.message)
        return
    summary = result.summary
    done = ", ".join(f"{k} {v}" for k, v in sorted(summary.session_counts.items())) or "nothing"
    verb = "reviewed" if review else "labeled"
    accepted = f"; {summary.session_suggested} of them accepted model suggestions" if summary.session_suggested else ""
    crops = "crop" if summary.session_labels == 1 else "crops"
    out.print(f"{summary.annotator} {verb} {summary.session_labels} {crops} this session ({done}){accepted}.")
    counts = summary.counts
    out.print(f"{summary.decided}/{summary.total} decided; {counts.get('unlabeled', 0)} unlabeled, "
              f"{counts.get('skip', 0)} skipped. Rerun `lrfp label` to continue.")
    if result.stop_signal is not None:
        raise typer.Exit(130)  # main() says what an interruption means (143 for SIGTERM)
