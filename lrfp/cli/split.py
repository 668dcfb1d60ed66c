"""`lrfp split`: grouped, stratified, seeded train/validation/test splits."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from lrfp.cli.options import DEFAULT_DATA_DIR, DataDir, JsonOut


def split(
    name: Annotated[str, typer.Option("--name", help="Store the split under this name (several can coexist).")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same store + seed gives the same split.")] = 0,
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
    from lrfp.split import SplitConfig, grouped_split, parse_ratios
    from lrfp.store import open_store

    cfg = SplitConfig(
        name=name, seed=seed, ratios=parse_ratios(ratios), test_size=test_size, balance=balance,
        min_face=min_face, group_by=group_by, dedupe=dedupe, hash_distance=hash_distance,
    )
    with open_store(data_dir, create=False) as store, progress_bar("hashing crops") as bar:
        result = grouped_split(store, cfg, progress=bar)
    if as_json:
        print(json.dumps(result.report, indent=2))
        return
    for table in _report_tables(result.report):
        out.print(table)
    for w in result.warnings:
        err.print(f"[yellow]Warning:[/yellow] {w}")


def _report_tables(r: dict[str, Any]) -> list:
    """Presentation only: the stored report as rich tables."""
    from rich.table import Table

    t = Table(title=f"split {r['name']} (seed {r['seed']}, grouped by {r['group_by']})", title_justify="left")
    for col in ("subset", "class", "crops", "share", "groups", "sources", "face px min/p25/med/p75/max"):
        t.add_column(col, justify="left" if col in ("subset", "class", "sources") else "right")
    for subset, s in r["subsets"].items():
        rows = [("all", s)] + list(s["classes"].items())
        for cls, c in rows:
            q = c["face_px"]
            t.add_row(
                subset if cls == "all" else "", cls, str(c["crops"]),
                f"{r['fractions'][subset]:.1%}" if cls == "all" else "", str(c["groups"]),
                ", ".join(c["sources"]), " / ".join(f"{v:g}" for v in q.values()) if q else "-",
            )
    leak = r["leakage"]
    nd = leak["near_duplicates"]
    a = Table(title="leakage audit", show_header=False, title_justify="left")
    a.add_column(style="bold")
    a.add_column()
    a.add_row("groups shared across splits", str(leak["shared_groups"]))
    a.add_row(f"near-duplicate pairs across splits (pHash <= {nd['max_distance']} bits)", str(nd["pairs"]))
    for ex in nd["examples"][:5]:
        a.add_row("", f"crop {ex['a']['crop_id']} ({ex['a']['subset']}) ~ crop {ex['b']['crop_id']} ({ex['b']['subset']}), distance {ex['distance']}")
    d = r["dedupe"]
    a.add_row("dedupe", f"{d['mode']}: {d['merged_pairs']} near-duplicate pair(s) merged groups, {d['dropped']} crop(s) dropped")
    a.add_row("groups (crops by key)", f"{r['groups']}  ({', '.join(f'{k} {v}' for k, v in r['group_keys'].items())})")
    a.add_row("groups holding both classes", str(r["mixed_label_groups"]))
    a.add_row("left out", ", ".join(f"{k} {v}" for k, v in r["excluded"].items()) or "none")
    if r["balance_dropped"]:
        a.add_row("dropped by --balance", str(r["balance_dropped"]))
    if leak["sources_in_several_splits"]:
        a.add_row("sources in several splits (by design when grouping finer than source)", ", ".join(leak["sources_in_several_splits"][:10]))
    return [t, a]
