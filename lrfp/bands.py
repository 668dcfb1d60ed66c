"""Face-size bands: the one rule `lrfp stats` and `lrfp bench` both use (no heavy imports: the bench path needs it)."""

from __future__ import annotations

OPEN_END = 1 << 30
"""Upper bound of the last band (no face is this large)."""

FACE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("<24", 0, 24), ("24-32", 24, 32), ("32-48", 32, 48), ("48-64", 48, 64), ("64-128", 64, 128),
    (">=128", 128, OPEN_END),
)
"""Bands of a face's size in px (store.face_px: the box's shorter side, else the crop's), as [low, high):
the lower bound is in the band, the upper is not (24 is in 24-32, 64 in 64-128). lrfp's own rule: the
thesis gives no bands; 24/32/48/64 follow the face sizes of sub-720p street video and Model 3's 64 px input."""


def face_band(face_px: int) -> str:
    """The name of the band holding `face_px` (px, >= 0). Raises ValueError for a negative size."""
    for name, lo, hi in FACE_BANDS:
        if lo <= face_px < hi:
            return name
    raise ValueError(f"face size {face_px} px is outside every band")
