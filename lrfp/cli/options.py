"""Options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

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
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same store and seed give the same result.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]

# How faces are found in a video: `lrfp fetch` and `lrfp predict VIDEO` take the same options.
Every = Annotated[float, typer.Option("--every", help="Sample one frame every N seconds of video.")]
MinFace = Annotated[int, typer.Option("--min-face", help=(
    "Smallest face box side to keep, in video pixels. 12: on hand-checked 12 px faces a labeler can still "
    "tell whether nose and mouth are covered; below ~10 px mostly not (SF-MASK keeps faces from 7 px)."))]
MinScore = Annotated[float, typer.Option("--min-score", help="Smallest detector score to keep (0-1).")]
Margin = Annotated[float, typer.Option("--margin", help="Margin around the face box on each side, as a fraction of its side.")]
Detector = Annotated[str, typer.Option("--detector", help=(
    "Face detector: blazeface (default; recall 98% on 16-40 px faces, precision 97% with tiles) or yunet "
    "(more of the smallest faces, less precise). `lrfp models list` shows each one's licence and sizes."))]
Tiles = Annotated[str, typer.Option("--tiles", help=(
    "Also detect on overlapping tiles of each frame, so small faces fill more of the detector's input: "
    "auto (a grid of near-square tiles from the frame's shape, 3x2 on 16:9), off (whole frame only, ~5x "
    "faster, finds about half the 16-40 px faces), or COLSxROWS such as 4x3."))]
ModelsDir = Annotated[Optional[Path], typer.Option(
    "--models-dir", help="Folder with the detector's weights files (else env LRFP_MODELS_DIR, else the user cache).")]
Downscale = Annotated[bool, typer.Option("--downscale", help="Accept 720p+ videos, resizing frames to 480 lines (recorded).")]
