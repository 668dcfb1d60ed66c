"""Shared fixtures: the real data in ../shared and small stores built from it."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "data" / "smfd").is_dir():
        pytest.fail(f"../shared with the real test data is missing (looked in {SHARED}); set LRFP_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def smfd_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "smfd"


def smfd_subset(smfd: Path, dest: Path, n_groups: int, seed: int = 0) -> tuple[Path, Path]:
    """A folder of symlinks to every file of `n_groups` random SMFD groups, plus its groups CSV.

    Whole groups are taken so that grouped splits are meaningful. Returns (folder, groups_csv).
    """
    with open(smfd / "smfd_groups.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    groups = sorted({r["group_id"] for r in rows}, key=int)
    chosen = set(random.Random(seed).sample(groups, n_groups))
    picked = [r for r in rows if r["group_id"] in chosen]
    for r in picked:
        link = dest / r["class"] / r["file"]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(smfd / r["class"] / r["file"])
    groups_csv = dest / "groups.csv"
    with open(groups_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["class", "file", "group_id"])
        w.writeheader()
        w.writerows(picked)
    return dest, groups_csv


@pytest.fixture
def smfd_small(smfd_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """About 50 real SMFD files (12 whole groups) as a class-folder tree + groups CSV."""
    return smfd_subset(smfd_dir, tmp_path / "smfd_small", n_groups=12)


def build_store(data_dir: Path, smfd: Path, n_groups: int = 12, max_side: int = 48, seed: int = 0, source: str = "smfd"):
    """A store holding a downscaled SMFD subset (labels from the class folders, groups recorded)."""
    from lrfp.import_folder import ImportConfig, import_folder
    from lrfp.store import open_store

    folder, groups_csv = smfd_subset(smfd, data_dir.parent / f"{source}_src_{seed}", n_groups=n_groups, seed=seed)
    store = open_store(data_dir)
    import_folder(store, ImportConfig(folder=folder, source=source, groups_csv=groups_csv, max_side=max_side))
    return store


@pytest.fixture
def small_store(smfd_dir: Path, tmp_path: Path):
    """An open Store with ~50 SMFD crops downscaled to 48 px, labeled by folder, grouped."""
    store = build_store(tmp_path / "data", smfd_dir)
    yield store
    store.close()
