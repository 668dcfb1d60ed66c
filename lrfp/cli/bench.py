"""`lrfp bench`: train and evaluate the thesis's six baselines."""

from __future__ import annotations

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir
from lrfp.errors import LrfpError


def bench(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Train and evaluate the six baselines on a split and report them beside the thesis.

    Example:
      lrfp bench --all --protocol quick
    """
    raise LrfpError("`lrfp bench` is not built yet (issue: bench)")
