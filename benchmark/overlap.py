"""Which `--eval-on` images are also in the benchmarked data (train, validation, test): a "cross-dataset"
accuracy on images the model trained on measures nothing new.

Exact copies are found two ways: the same decoded pixels (sha256 of the RGB array: a published copy of the
store, or an image folder with the crops themselves), and, for a store split, the same file bytes as a file
`lrfp import` read (the store keeps each imported file's sha256, so a folder imported with --max-side is
recognised although its crops were downscaled). Near-duplicates (re-encoded, resized, mirrored copies) are
found by a 64-bit difference hash (dHash, Krawetz 2013: 9x8 grayscale, one bit per horizontal gradient) of
the image and of its mirror, within DHASH_DISTANCE bits. The bench path cannot import imagehash, so the hash
is computed here with Pillow and numpy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

DHASH_DISTANCE = 4
"""Bits two dHashes may differ in and still count as near-duplicates. Measured on 400 random SMFD files
(docs/bench.md): a file and its 48 px --max-side copy differ by 0 bits at the median, 1 at p90, 3 at p99;
the pairs of different SMFD files within 4 bits were the same face (its augmented or masked version), which
is reported as a near-duplicate, never refused."""


def pixel_sha256(arr: np.ndarray) -> str:
    """sha256 of an HxWx3 uint8 array's shape and bytes (equal for the same decoded pixels)."""
    h = hashlib.sha256(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def dhash(arr: np.ndarray) -> tuple[int, int]:
    """64-bit dHash of an HxWx3 uint8 image and of its horizontal mirror, as ints."""
    from PIL import Image

    g = np.asarray(Image.fromarray(arr).convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (g[:, 1:] > g[:, :-1]).ravel()
    mirrored = g[:, ::-1]
    mbits = (mirrored[:, 1:] > mirrored[:, :-1]).ravel()
    weights = 1 << np.arange(64, dtype=np.uint64)
    return int((bits.astype(np.uint64) * weights).sum()), int((mbits.astype(np.uint64) * weights).sum())


def _imported_file_subsets(data_dir: Path, subsets: dict[str, Any]) -> dict[str, str]:
    """file sha256 -> subset, for every file `lrfp import` read into a crop of this split."""
    from lrfp.store import open_store

    crop_subset = {key: name for name, sub in subsets.items() for key in sub.keys}
    with open_store(data_dir, create=False, read_only=True) as store:
        pairs = store.imported_file_crops()
    return {sha: crop_subset[str(crop_id)] for sha, crop_id in pairs if str(crop_id) in crop_subset}


def eval_overlap(data: Any, eval_sub: Any, eval_folder: Path | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """Count the eval images that are also in the benchmarked subsets.

    `data`: benchmark.data.BenchData; `eval_sub`: the --eval-on Subset; `eval_folder`: its folder when it is a
    class-folder tree (keys are paths below it), for the file-bytes check against a store split in `data_dir`.
    Returns {"n", "exact": {subset: count}, "exact_any", "near": {subset: count}, "near_any", "dhash_bits"};
    an image is counted once per subset it is found in, and near excludes the exact copies.
    """
    pix: dict[str, str] = {}
    hashes, owners = [], []
    for name, sub in data.subsets.items():
        for arr in sub.images:
            pix.setdefault(pixel_sha256(arr), name)
            hashes.append(dhash(arr)[0])
            owners.append(name)
    by_file = _imported_file_subsets(data_dir, data.subsets) if data.kind == "store" and data_dir and eval_folder else {}
    plain = np.asarray(hashes, dtype=np.uint64)
    owners_arr = np.asarray(owners)
    names = list(data.subsets)
    exact = {n: 0 for n in names}
    near = {n: 0 for n in names}
    exact_any = near_any = 0
    for key, arr in zip(eval_sub.keys, eval_sub.images):
        found = set()
        if pixel_sha256(arr) in pix:
            found.add(pix[pixel_sha256(arr)])
        if by_file:
            path = eval_folder / key
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if digest in by_file:
                found.add(by_file[digest])
        if found:
            exact_any += 1
            for n in found:
                exact[n] += 1
            continue
        if len(plain):
            h, m = (np.uint64(v) for v in dhash(arr))
            dist = np.minimum(np.bitwise_count(plain ^ h), np.bitwise_count(plain ^ m))
            close = set(owners_arr[dist <= DHASH_DISTANCE].tolist())
            if close:
                near_any += 1
                for n in close:
                    near[n] += 1
    return {"n": len(eval_sub), "exact": exact, "exact_any": exact_any, "near": near, "near_any": near_any,
            "dhash_bits": DHASH_DISTANCE}


def overlap_warning(eval_name: str, info: dict[str, Any]) -> str | None:
    """One sentence for the CLI and results.md, or None when no eval image is in the benchmarked data."""
    if not info or not (info["exact_any"] or info["near_any"]):
        return None
    parts = []
    if info["exact_any"]:
        per = ", ".join(f"{n} {k}" for k, n in info["exact"].items() if n)
        parts.append(f"{info['exact_any']} of its {info['n']} images are exact copies of benchmarked images ({per})")
    if info["near_any"]:
        per = ", ".join(f"{n} {k}" for k, n in info["near"].items() if n)
        parts.append(f"{info['near_any']} more are near-duplicates (dHash within {info['dhash_bits']} bits, "
                     f"can include look-alikes: {per})")
    return (f"--eval-on {eval_name}: {'; '.join(parts)}. Its accuracy is partly measured on those, not a clean "
            "cross-dataset result: evaluate on images that are not in the store's split (or the published dataset)")
