"""`lrfp fetch`: video URLs from a manifest to face crops in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir
from lrfp.errors import LrfpError


def fetch(
    manifest: Annotated[Path, typer.Argument(help="CSV manifest with a url column.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Download each video below 720p, sample frames, detect faces, store crops with provenance.

    Example:
      lrfp fetch manifests/lima.csv
    """
    raise LrfpError("`lrfp fetch` is not built yet (issue: fetch)")
