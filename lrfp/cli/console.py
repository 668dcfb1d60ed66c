"""The terminal: one rich Console for normal output and one for stderr, used only by `lrfp.cli`."""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

NO_WRAP_WIDTH = 10_000
"""Width used when the output is not a terminal: tables and lines are never wrapped into a pipe or file."""


class _Console(Console):
    """A Console that wraps at the terminal's width, but not at all (COLUMNS or 80) into a pipe or a file.

    Piped output is read by programs and by `grep`; a table cut at 80 columns hides columns and
    splits words ("download_faile d").
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        if not self.is_terminal:  # rich takes COLUMNS (or 80) as the width of a pipe: ignore it there
            return ConsoleDimensions(NO_WRAP_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


out = _Console(highlight=False)
err = _Console(stderr=True, highlight=False)
