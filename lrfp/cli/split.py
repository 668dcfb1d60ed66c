"""`lrfp split`: grouped, stratified, seeded train/validation/test splits."""

from __future__ import annotations

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir
from lrfp.errors import LrfpError


def split(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Split labeled crops into train/validation/test, stratified by label and grouped by video/track/group.

    Example:
      lrfp split --seed 0
    """
    raise LrfpError("`lrfp split` is not built yet (issue: split/publish)")
