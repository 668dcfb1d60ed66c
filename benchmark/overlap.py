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
    Returns {"n", "exact_any", "exact", "exact_several", "near_any", "near", "near_several", "dhash_bits"}:
    exact_any = how many eval images are exact copies; exact = {subset: how many of those are found in that
    subset only}; exact_several = how many are found in two or more subsets (the benchmarked data itself holds
    that image twice, or, for near, look-alikes in two subsets). So sum(exact.values()) + exact_several ==
    exact_any, and the same for near, which leaves out the exact copies.
    """
    pix: dict[str, set[str]] = {}  # decoded pixels' sha256 -> the subsets holding them
    hashes, owners = [], []
    for name, sub in data.subsets.items():
        for arr in sub.images:
            pix.setdefault(pixel_sha256(arr), set()).add(name)
            hashes.append(dhash(arr)[0])
            owners.append(name)
    by_file = _imported_file_subsets(data_dir, data.subsets) if data.kind == "store" and data_dir and eval_folder else {}
    plain = np.asarray(hashes, dtype=np.uint64)
    owners_arr = np.asarray(owners)
    names = list(data.subsets)
    exact: list[set[str]] = []  # per eval image found: the subsets it is in
    near: list[set[str]] = []
    for key, arr in zip(eval_sub.keys, eval_sub.images):
        found = set(pix.get(pixel_sha256(arr), ()))
        if by_file:
            path = eval_folder / key
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if digest in by_file:
                found.add(by_file[digest])
        if found:
            exact.append(found)
            continue
        if len(plain):
            h, m = (np.uint64(v) for v in dhash(arr))
            dist = np.minimum(np.bitwise_count(plain ^ h), np.bitwise_count(plain ^ m))
            close = set(owners_arr[dist <= DHASH_DISTANCE].tolist())
            if close:
                near.append(close)
    out: dict[str, Any] = {"n": len(eval_sub)}
    for kind, found_in in (("exact", exact), ("near", near)):
        out[f"{kind}_any"] = len(found_in)
        out[kind] = {name: sum(1 for f in found_in if f == {name}) for name in names}
        out[f"{kind}_several"] = sum(1 for f in found_in if len(f) > 1)
    out["dhash_bits"] = DHASH_DISTANCE
    return out


def per_subset(info: dict[str, Any], kind: str) -> str:
    """Where the `kind` ("exact" or "near") matches of `eval_overlap` are, e.g. "6 train, 1 validation, 3 test,
    2 in several subsets": parts that sum to info[kind + "_any"]."""
    parts = [f"{n} {name}" for name, n in info[kind].items() if n]
    if info.get(f"{kind}_several"):
        parts.append(f"{info[kind + '_several']} in several subsets")
    return ", ".join(parts)


def overlap_warning(eval_name: str, info: dict[str, Any]) -> str | None:
    """One sentence for the CLI and results.md, or None when no eval image is in the benchmarked data.

    It gives the total of eval images found, then the exact copies and the near-duplicates, each split by subset
    (`per_subset`): every part sums to the count it explains, e.g. "--eval-on DIR: 17 of its 40 images are in
    the benchmarked data: 10 exact copies (6 train, 1 validation, 3 test) and 7 near-duplicates (...)".
    """
    if not info or not (info["exact_any"] or info["near_any"]):
        return None
    parts = []
    if info["exact_any"]:
        parts.append(f"{_count(info['exact_any'], 'exact copy', 'exact copies')} ({per_subset(info, 'exact')})")
    if info["near_any"]:
        parts.append(f"{_count(info['near_any'], 'near-duplicate', 'near-duplicates')} (dHash within "
                     f"{info['dhash_bits']} bits, which can include look-alikes: {per_subset(info, 'near')})")
    total = info["exact_any"] + info["near_any"]
    if total == info["n"]:  # every image: "all 8 of its 8" read as a count, and "partly" was wrong
        found, share = ("its only image is" if total == 1 else f"all {total} of its images are"), "wholly"
    else:
        found, share = f"{total} of its {info['n']} images {'is' if total == 1 else 'are'}", "partly"
    return (f"--eval-on {eval_name}: {found} in the benchmarked data: {' and '.join(parts)}. Its accuracy is "
            f"{share} measured on those, not a clean cross-dataset result: evaluate on images that are not in the "
            "store's split (or the published dataset)")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
