"""Helpers for the bench tests: a seeded grouped split written with `store.save_split` (independent of `lrfp split`)."""

from __future__ import annotations

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
