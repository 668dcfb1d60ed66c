"""Widgets shared by the labeling screens: a pixel image and the progress line."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

from lrfp import LABELS, SKIPPED, UNUSABLE
from lrfp.label.halfblock import HalfBlocks, LoadedImage, half_block_cells
from lrfp.label.session import LabelSession

LABEL_BINDINGS = [
    Binding("m", "label('with_mask')", "with mask"),
    Binding("n", "label('without_mask')", "without"),
    Binding("x", "label('unusable')", "unusable"),
    Binding("s", "label('skip')", "skip"),
    Binding("space", "label('skip')", "skip", show=False),
]
"""The label keys, the same in every view."""
UNDO_BINDINGS = [Binding("u", "undo", "undo"), Binding("backspace", "undo", "undo", show=False)]
ACCEPT_KEY = "y"
"""Accepts the model's suggestion (single view) or confirms a page of them (grid); free in both views."""

LABEL_STYLE = {
    "with_mask": ("with mask", "bold black on green"),
    "without_mask": ("without mask", "bold white on red"),
    UNUSABLE: ("unusable", "bold black on grey70"),
    SKIPPED: ("skipped", "bold black on yellow"),
    None: ("unlabeled", "dim"),
}


def label_text(label: str | None, short: bool = False) -> Text:
    name, style = LABEL_STYLE.get(label, (str(label), "bold"))
    if short:
        name = {"with mask": "mask", "without mask": "no mask"}.get(name, name)
    return Text(f" {name} ", style=style)


SUGGESTION_STYLE = {"with_mask": "italic bold green on grey15", "without_mask": "italic bold red on grey15"}
"""A suggestion is coloured text on a dark cell; a confirmed label is a solid coloured block (LABEL_STYLE)."""


def suggestion_text(label: str, probability: float, short: bool = False) -> Text:
    """How a model's suggestion is drawn: '?' and the probability, never the solid style of a label."""
    name = LABEL_STYLE.get(label, (label, ""))[0]
    if short:
        name = {"with mask": "mask", "without mask": "no mask"}.get(name, name)
    return Text(f" {name}? {probability:.2f} ", style=SUGGESTION_STYLE.get(label, "italic"))


class PixelImage(Widget):
    """An image drawn with half-block cells, scaled to the widget; a problem is shown as text instead.

    Uses Textual's line API (one cached Strip per row) rather than a rich renderable: a new crop
    costs one nearest-neighbour resize and no layout or rich rendering pass.
    """

    DEFAULT_CSS = "PixelImage { width: 1fr; height: 1fr; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._loaded: LoadedImage | None = None
        self._message: str | None = None
        self._strips: list[Strip] | None = None
        self._strips_key: tuple[object, ...] | None = None
        self._prepared: tuple[object, tuple[int, int], LoadedImage, list[Strip]] | None = None

    def show(self, loaded: LoadedImage | None, message: str | None = None, key: object = None) -> None:
        """Draw this image (or message). `key` names it, to use strips `prepare` built ahead."""
        if loaded is None and self._loaded is None and message == self._message and self._strips is not None:
            return  # the same notice again: nothing to redraw
        self._loaded, self._message = loaded, message
        self._strips = None
        size = (self.size.width, self.size.height)
        if key is not None and self._prepared is not None and self._prepared[:2] == (key, size):
            self._strips, self._strips_key = self._prepared[3], size
        self._prepared = None
        self.refresh()

    def prepared(self, key: object) -> LoadedImage | None:
        """The image `prepare` loaded for `key`, if it did."""
        return self._prepared[2] if self._prepared is not None and self._prepared[0] == key else None

    def prepare(self, key: object, loaded: LoadedImage) -> None:
        """Build the strips of the image likely shown next, while the user looks at this one."""
        self._prepared = (key, (self.size.width, self.size.height), loaded, self._build(loaded, None))

    def render(self):  # noqa: ANN201 - what the widget shows, for tests and screenshots of text
        loaded = self._loaded
        if loaded is None or loaded.image is None:
            return Text(self._message or (loaded.problem if loaded else ""))
        return HalfBlocks(half_block_cells(loaded.image, self.size.width, self.size.height), self.size.width)

    def _build(self, loaded: LoadedImage | None, message: str | None) -> list[Strip]:
        width, height = self.size.width, self.size.height
        base = self.rich_style
        if loaded is None or loaded.image is None:
            text = message or (loaded.problem if loaded else "")
            style = "bold red" if loaded is not None and loaded.problem else "italic"
            lines = self.app.console.render_lines(
                Text(text, style=style, justify="center"), self.app.console.options.update_width(max(1, width)),
                style=base, pad=False)
            return [Strip(line).extend_cell_length(width, base) for line in lines]
        blocks = HalfBlocks(half_block_cells(loaded.image, width, height), width, base.bgcolor)
        return [Strip(line).extend_cell_length(width, base) for line in blocks.lines()]

    def render_line(self, y: int) -> Strip:
        key = (self.size.width, self.size.height)
        if self._strips is None or self._strips_key != key:
            self._strips, self._strips_key = self._build(self._loaded, self._message), key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)


def screen_is_live(screen: Screen) -> bool:
    """Whether `screen` is still on the app's screen stack with its widgets mounted.

    A deferred callback (call_after_refresh, call_later) or a late event (resize) may reach a screen after a key
    burst such as "nnnnng" replaced it (`g` switches views; the old screen's widgets are removed while its queue
    still drains): such a callback must do nothing instead of querying widgets that are gone.
    """
    try:
        return screen.is_attached and screen in screen.app.screen_stack
    except Exception:  # noqa: BLE001 - no active app any more (the app is closing)
        return False


def notice_text(message: str) -> Text:
    """A status line saying what a key left alone (see LabelSession.skipped): it stands out from "saved"."""
    return Text(f" {message} ", style="bold black on yellow")


def progress_text(session: LabelSession) -> Text:
    p = session.progress()
    mode = f"review as {session.cfg.annotator}" if session.cfg.review else f"{session.cfg.annotator}"
    t = Text()
    t.append(f" {mode} ", style="bold reverse")
    t.append(f"  {'reviewed' if session.cfg.review else 'labeled'} {p.decided}/{p.total}  ")
    for key in (*LABELS, UNUSABLE, SKIPPED):
        t.append_text(label_text(key, short=True))
        t.append(f" {p.counts[key]}  ")
    t.append(f"unlabeled {p.counts['unlabeled']}  ")
    t.append(f"| this session {p.session_labels} ({p.per_minute():.1f}/min)")
    if session.cfg.review:
        t.append("  | blind: others' labels hidden", style="italic")
    elif session.has_suggestions:
        t.append(f"  | model suggestions: {ACCEPT_KEY} accepts", style="italic")
    return t
