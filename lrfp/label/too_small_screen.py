"""Shown while the terminal is smaller than the app can draw: says the minimum size."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static


class TooSmallScreen(ModalScreen):
    """Covers the views (and their label keys) until the terminal is large enough again."""

    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; background: $background; }
    TooSmallScreen > Static { width: 1fr; height: auto; content-align: center middle; text-style: bold; }
    """
    BINDINGS = [Binding("q", "app.quit", "quit")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static(self.message, id="too-small")

    def update(self, message: str) -> None:
        self.message = message  # (compose shows it if a resize comes before the screen is composed)
        for static in self.query("#too-small").results(Static):
            static.update(message)
