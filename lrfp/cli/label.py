"""`lrfp label`: the keyboard-first labeling app."""

from __future__ import annotations

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir
from lrfp.errors import LrfpError


def label(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Label crops with_mask / without_mask in a terminal app, fast, by keyboard.

    Example:
      lrfp label
    """
    raise LrfpError("`lrfp label` is not built yet (issue: label)")
