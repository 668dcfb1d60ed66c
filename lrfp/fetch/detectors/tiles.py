"""Tiled detection: the whole frame plus overlapping tiles, boxes mapped back to the frame and merged by NMS.

Why: BlazeFace resizes every input to 192x192, so what decides whether it finds a face is the face's size
relative to the image (below ~3.5% of the width it finds 9% of faces, above 7% it finds 98%; issue 15).
A tile makes each face bigger relative to the model's input. Measured on ../shared/data/faces_gt, one core:
whole frame 54% recall for 16-40 px faces, 3x2 tiles + the whole frame 97% (docs/detectors.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lrfp.errors import UsageError
from lrfp.fetch.detectors.base import MIN_IMAGE_SIDE, Detection, ImageDetector

OVERLAP = 0.2
"""Fraction of a tile shared with its neighbour: a face narrower than the overlap (~49 px on a 640x360 frame
in a 3x2 grid) lies whole inside at least one tile; bigger faces are found on the whole frame."""
NMS_IOU = 0.3
"""Boxes of one face found in several tiles and in the whole frame overlap by more than this (IoU); two faces
side by side overlap less. The same threshold as the faces_gt matching rule."""
MAX_TILES_PER_SIDE = 8
MIN_TILE_SIDE = 64
"""A tile narrower or lower than this is not used (a grid is reduced until its tiles reach it): smaller tiles
blow faces up past what the model was trained on and cost a detector call each for little gain."""
EDGE_PX = 1.0
"""A tile's box that reaches within this of a tile edge lying inside the frame is a face cut by that edge:
it is dropped, the neighbouring tile (overlap) or the whole frame sees the face whole."""

_GRID = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


@dataclass(frozen=True)
class Tiles:
    """How to tile: mode 'auto' (grid from the frame's shape), 'off' (whole frame only) or 'grid' (cols x rows)."""

    mode: str = "auto"
    cols: int = 0
    rows: int = 0

    def __str__(self) -> str:
        return f"{self.cols}x{self.rows}" if self.mode == "grid" else self.mode


def parse_tiles(text: str) -> Tiles:
    """'auto', 'off' or 'COLSxROWS' (each 1..MAX_TILES_PER_SIDE). Raises UsageError (exit 2) otherwise."""
    t = str(text).strip().lower()
    if t in ("auto", "off"):
        return Tiles(t)
    m = _GRID.match(t)
    if not m:
        raise UsageError(f"--tiles must be auto, off or COLSxROWS such as 3x2 (got {text!r})")
    cols, rows = int(m.group(1)), int(m.group(2))
    if not (1 <= cols <= MAX_TILES_PER_SIDE and 1 <= rows <= MAX_TILES_PER_SIDE):
        raise UsageError(
            f"--tiles {cols}x{rows}: columns and rows must each be 1 to {MAX_TILES_PER_SIDE} "
            f"(a tile must stay at least {MIN_TILE_SIDE} px; 3x2 suits 16:9 frames)"
        )
    return Tiles("grid", cols, rows)


def auto_grid(width: int, height: int) -> tuple[int, int]:
    """Tiles close to square: 2 along the short side, floor(2 x aspect) along the long one (3x2 for 16:9, 2x2
    for 4:3). On 16:9 frames 3x2 measured best; 2x2 gave more false positives (issue 15)."""
    if width >= height:
        return max(1, min(MAX_TILES_PER_SIDE, int(2 * width / height))), 2
    return 2, max(1, min(MAX_TILES_PER_SIDE, int(2 * height / width)))


def _tile_side(length: int, n: int) -> float:
    return length / (n - (n - 1) * OVERLAP) if n > 1 else float(length)


def grid_for_frame(tiles: Tiles, width: int, height: int) -> tuple[int, int]:
    """The grid used on a frame of this size: (cols, rows); (1, 1) means the whole frame only.

    A grid whose tiles would be under MIN_TILE_SIDE is reduced, one row or column at a time along the side
    that is too short, so that a small frame (e.g. 64x36) is simply detected whole.
    """
    if tiles.mode == "off":
        return 1, 1
    cols, rows = auto_grid(width, height) if tiles.mode == "auto" else (tiles.cols, tiles.rows)
    while cols > 1 and _tile_side(width, cols) < MIN_TILE_SIDE:
        cols -= 1
    while rows > 1 and _tile_side(height, rows) < MIN_TILE_SIDE:
        rows -= 1
    return cols, rows


def tile_windows(width: int, height: int, cols: int, rows: int) -> list[tuple[int, int, int, int]]:
    """The tiles (x0, y0, x1, y1) of a cols x rows grid with OVERLAP, covering the frame exactly."""
    if cols == 1 and rows == 1:
        return []
    tw, th = _tile_side(width, cols), _tile_side(height, rows)
    xs = [round(i * tw * (1 - OVERLAP)) for i in range(cols)]
    ys = [round(j * th * (1 - OVERLAP)) for j in range(rows)]
    out = []
    for j, y0 in enumerate(ys):
        y1 = height if j == rows - 1 else min(height, round(y0 + th))
        for i, x0 in enumerate(xs):
            x1 = width if i == cols - 1 else min(width, round(x0 + tw))
            out.append((x0, y0, x1, y1))
    return out


def _cut_by_inner_edge(box: tuple[float, float, float, float], win: tuple[int, int, int, int], width: int, height: int) -> bool:
    x, y, w, h = box  # in the tile's pixels
    x0, y0, x1, y1 = win
    tw, th = x1 - x0, y1 - y0
    return (
        (x0 > 0 and x < EDGE_PX) or (y0 > 0 and y < EDGE_PX)
        or (x1 < width and x + w > tw - EDGE_PX) or (y1 < height and y + h > th - EDGE_PX)
    )


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int] | None:
    """The part of a box inside the frame, in whole pixels (x, y, w, h), or None if nothing is left.
    A face partly outside the frame keeps the size of its visible part; it is never moved."""
    x, y, w, h = box
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def merge(dets: list[Detection], iou: float = NMS_IOU) -> list[Detection]:
    """Non-maximum suppression (OpenCV's `cv2.dnn.NMSBoxes`): of boxes overlapping by IoU > iou, the best scored
    is kept. Returns the kept detections, best first."""
    if len(dets) <= 1:
        return list(dets)
    import cv2

    keep = cv2.dnn.NMSBoxes([list(map(float, d.box)) for d in dets], [d.score for d in dets], 0.0, iou)
    kept = [dets[int(i)] for i in (keep.flatten() if hasattr(keep, "flatten") else keep)]
    kept.sort(key=lambda d: -d.score)
    return kept


def detect_tiled(detector: ImageDetector, rgb: Any, grid: tuple[int, int]) -> list[Detection]:
    """Faces in an RGB frame (H x W x 3 uint8): the whole frame plus the tiles of `grid` (cols, rows), each box
    mapped back to frame pixels, boxes cut by an inner tile edge dropped, duplicates merged by NMS, every box
    clipped to the frame. Boxes are whole pixels (x, y, w, h), best score first.

    Tiles are views of the frame (no colour conversion or resize per tile: the detector resizes its input
    itself); images with a side under MIN_IMAGE_SIDE are skipped.
    """
    height, width = rgb.shape[:2]
    found: list[Detection] = []
    if min(width, height) >= MIN_IMAGE_SIDE:
        found.extend(detector.detect_image(rgb))
    for win in tile_windows(width, height, *grid):
        x0, y0, x1, y1 = win
        if min(x1 - x0, y1 - y0) < MIN_IMAGE_SIDE:
            continue
        for d in detector.detect_image(rgb[y0:y1, x0:x1]):
            if _cut_by_inner_edge(d.box, win, width, height):
                continue
            x, y, w, h = d.box
            found.append(Detection((x + x0, y + y0, w, h), d.score))
    out = []
    for d in merge(found):
        box = clip_box(d.box, width, height)
        if box is not None:
            out.append(Detection(box, d.score))
    return out
