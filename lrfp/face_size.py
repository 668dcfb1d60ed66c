"""Face size in px and its quantiles: the one rule `lrfp stats`, split, publish, label and the bench rows share.

Its bands are in lrfp/bands.py. No heavy imports here: the bench path and the CLI import it.
"""

from __future__ import annotations

from typing import Any


def face_px(row: Any) -> int:
    """Face size in px, the one rule every command uses: the shorter side of the detected face box,
    else (an imported image, which is the face) the shorter side of the crop.

    `row` is a mapping (an sqlite3.Row of the crops table) with box_w, box_h, width and height.
    """
    if row["box_w"] is not None and row["box_h"] is not None:
        return int(min(row["box_w"], row["box_h"]))
    return int(min(row["width"], row["height"]))


def quantiles(values: list[int], qs: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> list[float] | None:
    """The qs-quantiles of face sizes in px (numpy.quantile, linear interpolation); None for no values."""
    import numpy as np

    if not values:
        return None
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64), qs)]
