"""Rich progress bars that library code drives through typed `ProgressEvent` callbacks."""

from __future__ import annotations

import contextlib
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lrfp.cli.console import err
from lrfp.events import ProgressCallback, ProgressEvent


def make_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False,
    )


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """Yields a callback(ProgressEvent) that advances one bar on stderr.

    The bar appears at the first event, so an error raised while inputs are still being checked
    is the only thing printed.
    """
    progress = make_progress()
    task = None

    def update(event: ProgressEvent) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=None)
        progress.update(task, completed=event.done, total=event.total)

    try:
        yield update
    finally:
        if task is not None:
            progress.stop()
