"""Build a store of N crops for training-speed checks (a script, not a test), e.g. the issue's 2,000-crop GPU check.

    .venv/bin/python -m perf.speed_store .speedstore --n 2000

SMFD has 1,279 distinct images (exact duplicates are skipped); the rest are mirrored copies of them, each in its original's group, so
that a split never separates an image from its mirror. Made through the real `lrfp import` and
`lrfp split`. It is for timing: do not report accuracies from it as results on SMFD.
The store is small enough (64 px crops, ~16 MB) to travel to a GPU machine with the device tool's `carry`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMFD = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared")) / "data" / "smfd"


def build_folder(smfd: Path, dest: Path, n: int, max_side: int) -> Path:
    """Write up to n images into dest/<class>/ (originals first, then mirrors) and a groups CSV; returns the CSV."""
    from PIL import Image, ImageOps

    groups = {(r["class"], r["file"]): r["group_id"] for r in csv.DictReader(open(smfd / "smfd_groups.csv"))}
    files, seen = [], set()
    for cls, p in sorted((cls, p) for cls in ("with_mask", "without_mask") for p in (smfd / cls).iterdir()):
        digest = hashlib.sha256(p.read_bytes()).digest()
        if (cls, p.name) in groups and digest not in seen:  # SMFD holds exact duplicates: keep each image once
            seen.add(digest)
            files.append((cls, p))
    rows, count = [], 0
    for mirrored in (False, True):
        for cls, p in files:
            if count >= n:
                break
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((max_side, max_side))
                if mirrored:
                    im = ImageOps.mirror(im)
            name = f"{'m-' if mirrored else ''}{p.stem}.png"
            (dest / cls).mkdir(parents=True, exist_ok=True)
            im.save(dest / cls / name)
            rows.append({"class": cls, "file": name, "group_id": groups[(cls, p.name)]})
            count += 1
    out = dest.parent / "groups.csv"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["class", "file", "group_id"])
        w.writeheader()
        w.writerows(rows)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="folder to create; the store goes to DEST/data")
    ap.add_argument("--n", type=int, default=2000, help="crops in the store (default 2000)")
    ap.add_argument("--max-side", type=int, default=64)
    ap.add_argument("--smfd", type=Path, default=SMFD)
    args = ap.parse_args(argv)

    data = args.dest / "data"
    lrfp = [sys.executable, "-c", "from lrfp.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        groups = build_folder(args.smfd, folder, args.n, args.max_side)
        subprocess.run([*lrfp, "import", str(folder), "--source", "smfd-speed", "--groups", str(groups), "-d", str(data)],
                       check=True, cwd=REPO)
    subprocess.run([*lrfp, "split", "-d", str(data)], check=True, cwd=REPO)


if __name__ == "__main__":
    main()
