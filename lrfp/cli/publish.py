"""`lrfp publish`: the dataset in Hugging Face Hub layout, and its push."""

from __future__ import annotations

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir
from lrfp.errors import LrfpError


def publish(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Write the split dataset as Hub parquet + dataset card, and optionally push it.

    Example:
      lrfp publish --out dist/lr-fp
    """
    raise LrfpError("`lrfp publish` is not built yet (issue: split/publish)")
