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


CLASSES = ("with_mask", "without_mask")
MIN_N = 6  # `lrfp split`: each of train/validation/test needs a crop of each class -> 3 per class (lrfp/split.py)


def stratified(per_class: dict[str, list[Path]]) -> list[tuple[str, Path]]:
    """(class, file) interleaved so that every prefix keeps the classes' shares: the i-th file of a class with n
    files sits at (i + 0.5) / n. The first N >= 2 files hold both classes (sorted by class, any N up to the
    first class's size held only that class: bench-bugs.md bug 8)."""
    keyed = [((i + 0.5) / len(ps), cls, p) for cls, ps in per_class.items() for i, p in enumerate(ps)]
    return [(cls, p) for _, cls, p in sorted(keyed)]


def build_folder(smfd: Path, dest: Path, n: int, max_side: int) -> Path:
    """Write up to n images into dest/<class>/ (originals first, then mirrors) and a groups CSV; returns the CSV."""
    from PIL import Image, ImageOps

    groups = {(r["class"], r["file"]): r["group_id"] for r in csv.DictReader(open(smfd / "smfd_groups.csv"))}
    per_class: dict[str, list[Path]] = {}
    seen: set[bytes] = set()
    for cls, p in sorted((cls, p) for cls in CLASSES for p in (smfd / cls).iterdir()):
        digest = hashlib.sha256(p.read_bytes()).digest()
        if (cls, p.name) in groups and digest not in seen:  # SMFD holds exact duplicates: keep each image once
            seen.add(digest)
            per_class.setdefault(cls, []).append(p)
    files = stratified(per_class)
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
    if args.n < MIN_N:
        ap.error(f"--n {args.n} is too few: `lrfp split` needs at least 3 crops of each class (train, validation "
                 f"and test), so give --n {MIN_N} or more")

    data = args.dest / "data"
    lrfp = [sys.executable, "-c", "from lrfp.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        groups = build_folder(args.smfd, folder, args.n, args.max_side)
        _lrfp(lrfp, "import", str(folder), "--source", "smfd-speed", "--groups", str(groups), "-d", str(data))
    _lrfp(lrfp, "split", "-d", str(data), hint=f"--n {args.n} may be too few crops for a split: give a larger --n")


def _lrfp(lrfp: list[str], *args: str, hint: str = "") -> None:
    """Run an lrfp command; if it fails, exit with its code and a line naming it (its own `Error:` line is
    above), without a traceback."""
    rc = subprocess.run([*lrfp, *args], cwd=REPO).returncode
    if rc:
        print(f"perf.speed_store: `lrfp {args[0]}` failed (exit {rc}, its message is above)" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        sys.exit(rc)


if __name__ == "__main__":
    main()
