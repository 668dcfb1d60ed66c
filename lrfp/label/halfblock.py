"""Crop images as terminal text: half-block cells (two pixels per cell, true colour, nearest-neighbour).

Pure functions of PIL images; the Textual widgets only call `half_block_cells` and `HalfBlocks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from lrfp.images import to_rgb

RGB = tuple[int, int, int]
Cell = tuple[RGB, RGB | None]
"""One terminal cell: the colour of its upper pixel and of its lower one (None past the image's last row)."""

UPPER_HALF = "\u2580"  # ▀ : foreground paints the upper pixel, background the lower one


def fit_size(width: int, height: int, cols: int, rows: int) -> tuple[int, int]:
    """Pixel size to draw a width x height image in cols x rows cells (two pixels per cell, vertically).

    Upscaling uses a whole factor, so every source pixel becomes the same square block and the real
    low resolution stays visible; an image larger than the area is shrunk to fit, aspect kept.
    """
    if width <= 0 or height <= 0 or cols <= 0 or rows <= 0:
        return 0, 0
    scale = min(cols / width, 2 * rows / height)
    if scale >= 1:
        scale = math.floor(scale)
    return max(1, min(cols, round(width * scale))), max(1, min(2 * rows, round(height * scale)))


def half_block_cells(im: Image.Image, cols: int, rows: int) -> list[list[Cell]]:
    """The image scaled (nearest neighbour) to fit cols x rows cells, as rows of (upper, lower) colours."""
    w, h = fit_size(im.width, im.height, cols, rows)
    if w == 0:
        return []
    scaled = im.convert("RGB").resize((w, h), Image.Resampling.NEAREST)
    data = scaled.tobytes()
    pixels = list(zip(data[0::3], data[1::3], data[2::3]))  # row-major RGB tuples, built in C
    lines: list[list[Cell]] = []
    for y in range(0, h, 2):
        upper = pixels[y * w:(y + 1) * w]
        lower = pixels[(y + 1) * w:(y + 2) * w] if y + 1 < h else [None] * w
        lines.append(list(zip(upper, lower)))
    return lines


_STYLE_CACHE: dict[tuple[Cell, object], Style] = {}


def _cell_style(cell: Cell, background: Color | None) -> Style:
    key = (cell, background)
    style = _STYLE_CACHE.get(key)
    if style is None:
        upper, lower = cell
        style = Style(color=Color.from_rgb(*upper), bgcolor=Color.from_rgb(*lower) if lower is not None else background)
        if len(_STYLE_CACHE) > 200_000:
            _STYLE_CACHE.clear()
        _STYLE_CACHE[key] = style
    return style


@dataclass(frozen=True)
class HalfBlocks:
    """A rich renderable of half-block cells, centred horizontally in `width` columns.

    `background` fills the padding and the lower half of the last row of an odd-height image.
    """

    cells: list[list[Cell]]
    width: int = 0
    background: Color | None = None

    def lines(self) -> list[list[Segment]]:
        pad = max(0, (self.width - max((len(r) for r in self.cells), default=0)) // 2)
        pad_style = Style(bgcolor=self.background)
        out = []
        for row in self.cells:
            segs = [Segment(" " * pad, pad_style)] if pad else []
            # Neighbouring cells of one colour pair share one segment: fewer escape codes to write.
            run_style, run_len = None, 0
            for cell in row:
                style = _cell_style(cell, self.background)
                if style is run_style:
                    run_len += 1
                    continue
                if run_len:
                    segs.append(Segment(UPPER_HALF * run_len, run_style))
                run_style, run_len = style, 1
            if run_len:
                segs.append(Segment(UPPER_HALF * run_len, run_style))
            out.append(segs)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for i, segs in enumerate(self.lines()):
            if i:
                yield Segment.line()
            yield from segs


@dataclass(frozen=True)
class LoadedImage:
    """A crop or frame read from disk: the image, or why there is none."""

    image: Image.Image | None
    problem: str | None = None


def load_image(path: Path, shown_as: str | None = None) -> LoadedImage:
    """Read an image file fully; a missing or corrupt file is reported, never raised."""
    name = shown_as or str(path)
    if not path.exists():
        return LoadedImage(None, f"file missing: {name}")
    try:
        with Image.open(path) as im:
            im.load()
            return LoadedImage(to_rgb(im))  # 16-bit, alpha, CMYK...: by what the values mean
    except Exception as e:  # noqa: BLE001 - any decoder failure means "corrupt" to the labeler
        return LoadedImage(None, f"file corrupt ({type(e).__name__}): {name}")


BOX_COLOUR = (255, 0, 255)


def context_region(
    frame: Image.Image, box: tuple[int, int, int, int], margin: float = 1.5, box_frame_size: tuple[int, int] | None = None,
) -> Image.Image:
    """The box's surroundings in its frame (margin x box size on each side), with the box outlined.

    `box_frame_size` is the size of the frame the box's coordinates refer to (a video frame), when the stored
    image is a smaller copy of it (`lrfp fetch` keeps a shrunk context JPEG): the box is scaled to the image.
    """
    x, y, w, h = box
    if box_frame_size and box_frame_size != frame.size:  # (sizes come from the store: positive)
        sx, sy = frame.width / box_frame_size[0], frame.height / box_frame_size[1]
        x, y = int(round(x * sx)), int(round(y * sy))
        w, h = max(1, int(round(w * sx))), max(1, int(round(h * sy)))
    mx, my = int(w * margin), int(h * margin)
    left, top = max(0, x - mx), max(0, y - my)
    right, bottom = min(frame.width, x + w + mx), min(frame.height, y + h + my)
    if right <= left or bottom <= top:
        return frame.copy()
    region = frame.crop((left, top, right, bottom)).convert("RGB")
    draw = ImageDraw.Draw(region)
    draw.rectangle((x - left - 1, y - top - 1, x - left + w, y - top + h), outline=BOX_COLOUR)
    return region
