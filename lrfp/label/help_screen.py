"""The `?` help: every key of both views."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("m", "with mask", "label and move on (each key is saved at once)"),
    ("n", "without mask", ""),
    ("x", "unusable", "not a face, unreadable, missing or corrupt file"),
    ("s / space", "skip", "unsure: ask again later (lrfp label --only skipped)"),
    ("y", "accept suggestion", "single: take the model's label (model: with_mask 0.93); grid: confirm every "
                               "suggested cell of the page (flip wrong ones first with m / n) and go on"),
    ("u / backspace", "undo", "restore the previous label (recorded in the history too)"),
    ("left / right", "previous / next", "move without labeling (single view)"),
    ("arrows", "move the cursor", "grid view"),
    ("a", "rest of page", "grid: label every unlabeled cell like the cursor's cell"),
    ("enter", "next page", "grid: the page is done"),
    ("g", "grid / single", "toggle the view"),
    ("?", "this help", ""),
    ("q / ctrl+c", "quit", "nothing is lost: rerun to resume at the first unlabeled crop"),
]


class HelpScreen(ModalScreen):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 100; height: auto; border: round $accent; padding: 1 2;
                          background: $surface; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "close"),
        Binding("question_mark", "app.pop_screen", "close"),
        Binding("q", "app.pop_screen", "close"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(title="lrfp label: keys", show_edge=False, title_justify="left")
        table.add_column("key", style="bold")
        table.add_column("does")
        table.add_column("", style="dim")
        for key, what, note in KEYS:
            table.add_row(key, what, note)
        yield Static(table)
