"""How long `lrfp split` and `lrfp publish --out` take for N crops (default 10,000).

The crops are real pixels: every unique SMFD image (../shared/data/smfd) at several low resolutions
(longer side 20-48 px) and mirrored, stored as distinct PNG crops in a throwaway store under a
temporary folder with a license recorded only there (SMFD must never be published: the output is
deleted at the end). Prints one JSON row: crops, seconds per stage, bytes written, machine, load.

    .venv/bin/python -m perf.publish_speed --crops 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("LRFP_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def build_store(data_dir: Path, n_crops: int) -> int:
    """Fill a store with n_crops distinct low-res crops from SMFD (labels from the class folders)."""
    from PIL import ImageOps

    from lrfp.images import downscale, encode_png, load_rgb
    from lrfp.store import CropOrigin, open_store

    smfd = SHARED / "data" / "smfd"
    files = sorted((p, p.parent.name) for d in ("with_mask", "without_mask") for p in (smfd / d).iterdir())
    sides = (48, 40, 32, 28, 24, 20)
    with open_store(data_dir) as store:
        source = store.upsert_source("smfd-bench", "folder", path=str(smfd), license="benchmark-only, never published")
        made = 0
        decoded = [(p, label, load_rgb(p.read_bytes())) for p, label in files]
        for side in sides:
            for flip in (False, True):
                with store.transaction():
                    for p, label, im in decoded:
                        if made >= n_crops:
                            break
                        small = downscale(im, side)
                        if flip:
                            small = ImageOps.mirror(small)
                        _, created = store.add_crop(
                            source, encode_png(small), small.width, small.height,
                            CropOrigin(original=p.name, group_id=f"smfd:{p.stem}"),
                            label=label, annotator="bench", conn_in_transaction=True,
                        )
                        made += int(created)
        return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=10_000)
    args = ap.parse_args()

    from lrfp.publish import PublishConfig, export_dataset
    from lrfp.split import SplitConfig, grouped_split
    from lrfp.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="lrfp-publish-bench-"))
    try:
        t0 = time.perf_counter()
        n = build_store(tmp / "data", args.crops)
        t_build = time.perf_counter() - t0
        with open_store(tmp / "data", create=False) as store:
            t0 = time.perf_counter()
            split = grouped_split(store, SplitConfig())
            t_split = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = export_dataset(store, PublishConfig(out=tmp / "hub"))
            t_publish = time.perf_counter() - t0
        import datasets

        t0 = time.perf_counter()
        ds = datasets.load_dataset(str(tmp / "hub"), cache_dir=str(tmp / "cache"))
        t_load = time.perf_counter() - t0
        row = {
            "crops": n,
            "published": result.total,
            "loaded_back": sum(len(v) for v in ds.values()),
            "split_s": round(t_split, 2),
            "publish_s": round(t_publish, 2),
            "load_dataset_s": round(t_load, 2),
            "store_build_s": round(t_build, 2),
            "parquet_bytes": sum(f.stat().st_size for f in result.files if f.suffix == ".parquet"),
            "near_duplicate_merges": split.report["dedupe"]["merged_pairs"],
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(row))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
