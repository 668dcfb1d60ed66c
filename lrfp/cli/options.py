"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", "-d", envvar="LRFP_DATA_DIR", file_okay=False,
        help="The lrfp data directory (SQLite index + crops).", show_default=True,
    ),
]
DEFAULT_DATA_DIR = Path("lrfp-data")

SplitName = Annotated[
    str | None, typer.Option("--split", help="Split to use (default: the last one `lrfp split` wrote).")
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (split, --shuffle, the --review sample): same store + seed gives the same result.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
