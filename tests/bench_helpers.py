"""Helpers for the bench tests: a seeded grouped split written with `store.save_split` (independent of `lrfp split`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def grouped_split(store: Any, name: str = "bench", seed: int = 0, test_folds: int = 5, val_folds: int = 8) -> dict[str, int]:
    """Stratified grouped split of the labeled crops (whole `group_id`s per subset): ~20% test, ~10% validation."""
    from sklearn.model_selection import StratifiedGroupKFold

    rows = store.query(
        "SELECT c.id, COALESCE(c.group_id, 'crop' || c.id) AS g, cl.label FROM crops c "
        "JOIN current_labels cl ON cl.crop_id = c.id WHERE cl.label IN ('with_mask', 'without_mask') ORDER BY c.id"
    )
    ids = [r["id"] for r in rows]
    groups = [r["g"] for r in rows]
    labels = [r["label"] for r in rows]
    rest, test = next(StratifiedGroupKFold(test_folds, shuffle=True, random_state=seed).split(ids, labels, groups))
    sub = StratifiedGroupKFold(val_folds, shuffle=True, random_state=seed)
    tr, va = next(sub.split([ids[i] for i in rest], [labels[i] for i in rest], [groups[i] for i in rest]))
    subset = {ids[i]: "test" for i in test}
    subset.update({ids[rest[i]]: "validation" for i in va})
    subset.update({ids[rest[i]]: "train" for i in tr})
    store.save_split(name, sorted(subset.items()), seed=seed, params={"by": "group_id", "tool": "tests"}, report={})
    counts: dict[str, int] = {}
    for s in subset.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def split_store(root: Path, smfd_dir: Path, n_groups: int, max_side: int, split: str = "grouped", seed: int = 0) -> Path:
    """A store at root/"data" of `n_groups` whole SMFD groups (`conftest.build_store`, crops downscaled to
    `max_side` px) with a seeded grouped split named `split`; returns the data directory."""
    from conftest import build_store

    store = build_store(root / "data", smfd_dir, n_groups=n_groups, max_side=max_side)
    grouped_split(store, split, seed=seed)
    store.close()
    return root / "data"


def tiny_bench_config(store: Path, out: Path, **kw: Any) -> Any:
    """A BenchConfig for resume/checkpoint tests: Model 3 at 16 px, the quick protocol, 2 epochs, one seed, fp32 on
    the CPU; `kw` overrides any field."""
    from benchmark.harness import BenchConfig

    base = dict(data_dir=store, out=out, models=("model3",), protocol="quick", epochs=2, seeds=1, input_size=16,
                device="cpu", precision="fp32")
    return BenchConfig(**{**base, **kw})


def cli_run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """`lrfp ARGV` in this process: (exit code, stdout, the last `Error: ...` line of stderr, else all of stderr;
    stderr also carries the progress bars)."""
    import pytest

    from lrfp.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    cap = capsys.readouterr()
    errors = [line for line in cap.err.splitlines() if line.startswith("Error:")]
    return e.value.code, cap.out, errors[-1] if errors else cap.err
