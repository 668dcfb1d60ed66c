"""`lrfp split`: grouped, stratified, seeded train/validation/test splits."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, JsonOut, Seed


def split(
    name: Annotated[str, typer.Option("--name", help="Store the split under this name (several can coexist).")] = "default",
    seed: Seed = 0,
    ratios: Annotated[
        str, typer.Option("--ratios", help="train,validation,test fractions (sum 1; validation may be 0).")
    ] = "0.8,0.04,0.16",
    test_size: Annotated[
        Optional[int], typer.Option("--test-size", help="Absolute test size N; train/validation share the rest by --ratios.")
    ] = None,
    balance: Annotated[bool, typer.Option("--balance", help="Equal class counts in every split (drops extra crops of the larger class).")] = False,
    min_face: Annotated[
        Optional[int], typer.Option("--min-face", help="Use only crops whose shorter side is at least PX pixels.", metavar="PX")
    ] = None,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Group level kept in one split: track (then video, then group), video, or group.")
    ] = "track",
    dedupe: Annotated[
        str, typer.Option("--dedupe", help="Near-duplicates across groups: move (merge their groups first), drop (drop train's copy), off (only report).")
    ] = "move",
    hash_distance: Annotated[
        int, typer.Option("--hash-distance", help="Near-duplicate threshold: pHash Hamming distance (of 64 bits).")
    ] = 6,
    as_json: JsonOut = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Split labeled crops into train/validation/test, stratified by label and grouped by track/video/group.

    Groups never span two splits; near-duplicate crops (perceptual hash) in different groups are
    merged into one group first (--dedupe move). Prints per split and class the counts, groups,
    sources and face sizes, and the leakage audit; stores the split as the last used one.

    Example:
      lrfp split --seed 0 --ratios 0.8,0.04,0.16 --balance
    """
    from lrfp.cli.console import err, out
    from lrfp.cli.progress import progress_bar
    from lrfp.cli.tables import split_tables
    from lrfp.split import SplitConfig, grouped_split, parse_ratios
    from lrfp.store import open_store

    cfg = SplitConfig(
        name=name, seed=seed, ratios=parse_ratios(ratios), test_size=test_size, balance=balance,
        min_face=min_face, group_by=group_by, dedupe=dedupe, hash_distance=hash_distance,
    )
    with open_store(data_dir, create=False) as store, progress_bar("hashing crops") as bar:
        result = grouped_split(store, cfg, progress=bar)
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    if as_json:
        print(json.dumps(result.report, indent=2))
        return
    for table in split_tables(result.report):
        out.print(table)
    for w in result.warnings:
        err.print(f"[yellow]Warning:[/yellow] {w}")
