"""`python -m perf.speed_store DIR --n N` (the timing store) holds both classes for any N, and says clearly
when N is too few or a step fails, without a traceback (bench-bugs.md bug 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def speed_store(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perf.speed_store", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def with_mask_share(smfd_dir) -> float:
    """The with_mask share of SMFD's distinct images (exact duplicates counted once), counted here."""
    import hashlib

    seen: set[bytes] = set()
    counts: Counter = Counter()
    for cls in ("with_mask", "without_mask"):
        for p in sorted((smfd_dir / cls).iterdir()):
            digest = hashlib.sha256(p.read_bytes()).digest()
            if digest not in seen:
                seen.add(digest)
                counts[cls] += 1
    return counts["with_mask"] / sum(counts.values())


@pytest.mark.parametrize("n", [2, 3, 7, 150])
def test_any_n_takes_both_classes_in_their_shares(n, smfd_dir, with_mask_share, tmp_path):
    from perf.speed_store import build_folder

    groups_csv = build_folder(smfd_dir, tmp_path / "images", n, max_side=16)
    counts = Counter(p.parent.name for p in (tmp_path / "images").rglob("*.png"))
    assert sum(counts.values()) == n and set(counts) == {"with_mask", "without_mask"}
    assert abs(counts["with_mask"] - n * with_mask_share) <= 1, counts
    assert len(groups_csv.read_text().splitlines()) == n + 1


def test_a_store_from_the_fewest_crops(smfd_dir, tmp_path):
    r = speed_store(str(tmp_path / "s"), "--n", "6", "--max-side", "16", "--smfd", str(smfd_dir))
    assert r.returncode == 0, r.stderr
    from lrfp.store import open_store

    with open_store(tmp_path / "s" / "data", create=False, read_only=True) as store:
        counts = store.split_label_counts(store.resolve_split())
    assert {s: sorted(c) for s, c in counts.items()} == {s: ["with_mask", "without_mask"] for s in ("train", "validation", "test")}


def test_too_few_crops_is_a_clear_error(tmp_path):
    r = speed_store(str(tmp_path / "s"), "--n", "5")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().endswith("error: --n 5 is too few: `lrfp split` needs at least 3 crops of each class (train, "
                                     "validation and test), so give --n 6 or more")
    assert not (tmp_path / "s").exists()


def test_a_failing_lrfp_step_is_named_without_a_traceback(smfd_dir, tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "data").write_text("not a folder")  # the store's place is taken by a file
    r = speed_store(str(tmp_path / "s"), "--n", "6", "--max-side", "16", "--smfd", str(smfd_dir))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().endswith("perf.speed_store: `lrfp import` failed (exit 2, its message is above)")
    assert (tmp_path / "s" / "data").read_text() == "not a folder"
