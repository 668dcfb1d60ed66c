"""Widgets shared by the labeling screens: a pixel image and the progress line."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from lrfp import LABELS, SKIPPED, UNUSABLE
from lrfp.label.render import HalfBlocks, LoadedImage, half_block_cells
from lrfp.label.session import LabelSession

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


class PixelImage(Widget):
    """An image drawn with half-block cells, scaled to the widget; a problem is shown as text instead."""

    DEFAULT_CSS = "PixelImage { width: 1fr; height: 1fr; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._loaded: LoadedImage | None = None
        self._message: str | None = None
        self._cache: tuple[object, tuple[int, int], HalfBlocks] | None = None

    def show(self, loaded: LoadedImage | None, message: str | None = None) -> None:
        self._loaded, self._message = loaded, message
        self.refresh()

    def render(self):  # noqa: ANN201 - a rich renderable
        loaded = self._loaded
        if loaded is None or loaded.image is None:
            text = self._message or (loaded.problem if loaded else "")
            style = "bold red" if loaded is not None and loaded.problem else "italic"
            return Text(text, style=style, justify="center")
        size = (self.size.width, self.size.height)
        if self._cache is not None and self._cache[0] is loaded and self._cache[1] == size:
            return self._cache[2]
        blocks = HalfBlocks(half_block_cells(loaded.image, *size), size[0])
        self._cache = (loaded, size, blocks)
        return blocks


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
    return t
