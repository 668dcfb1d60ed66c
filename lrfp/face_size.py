"""Face size in px, its bands and quantiles: the one rule `lrfp stats`, split, publish, label and the bench rows share.

No heavy imports here: the bench path (`benchmark/metrics.py`) and the CLI import it.
"""

from __future__ import annotations

from typing import Any

FACE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("<24", 0, 24), ("24-32", 24, 32), ("32-48", 32, 48), ("48-64", 48, 64), ("64-128", 64, 128), (">=128", 128, None),
)
"""Face-size bands by the face's shorter side in px, each [low, high): 24 is in 24-32, 64 in 64-128.

The edges are those `lrfp stats` has always used; 64 px is the input size of the thesis's Model 3
(../shared/THESIS.md). The bench rows used [48, 65) for "48-64" until both were read from here.
"""

BAND_NAMES: tuple[str, ...] = tuple(name for name, _, _ in FACE_BANDS)


def face_px(row: Any) -> int:
    """Face size in px, the one rule every command uses: the shorter side of the detected face box,
    else (an imported image, which is the face) the shorter side of the crop.

    `row` is a mapping (an sqlite3.Row of the crops table) with box_w, box_h, width and height.
    """
    if row["box_w"] is not None and row["box_h"] is not None:
        return int(min(row["box_w"], row["box_h"]))
    return int(min(row["width"], row["height"]))


def face_band(shorter_side: int) -> str:
    """The name of the band of FACE_BANDS holding a face of this size in px. Raises ValueError below 0."""
    for name, lo, hi in FACE_BANDS:
        if shorter_side >= lo and (hi is None or shorter_side < hi):
            return name
    raise ValueError(f"face size {shorter_side} px is not in any band")


def quantiles(values: list[int], qs: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float] | None:
    """The qs-quantiles of face sizes in px (numpy.quantile, linear interpolation); None for no values."""
    import numpy as np

    if not values:
        return None
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64), qs)]
