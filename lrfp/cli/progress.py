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
    """Yields a callback(ProgressEvent) that advances one bar on stderr."""
    with make_progress() as progress:
        task = progress.add_task(description, total=None)

        def update(event: ProgressEvent) -> None:
            progress.update(task, completed=event.done, total=event.total)

        yield update
