"""Agreement between a crop's label and its blind review: Cohen's kappa, confusion, disagreements."""

from __future__ import annotations

import math
from typing import Any

from lrfp import LABELS, UNUSABLE
from lrfp.store import Store

CLASSES = (*LABELS, UNUSABLE)
"""Classes compared; skips and cleared labels on either side leave a crop out, and so does a current label
that is an accepted model suggestion (it measures the model as much as the annotator)."""


def cohen_kappa(pairs: list[tuple[str, str]], classes: tuple[str, ...] = CLASSES) -> float | None:
    """Cohen's kappa of (first, second) label pairs (scikit-learn's `cohen_kappa_score`); None when
    undefined (no pairs, or both sides use one and the same class only)."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    if not pairs:
        return None
    first, second = zip(*pairs)
    with warnings.catch_warnings():  # chance agreement 1 (0/0): sklearn warns and returns NaN
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        kappa = float(cohen_kappa_score(first, second, labels=list(classes)))
    return None if math.isnan(kappa) else kappa


def agreement(store: Store) -> dict[str, Any] | None:
    """Compare each reviewed crop's current label with the latest review of each reviewer.

    Returns None when the store has no review events. Otherwise a dict with n (compared pairs),
    observed agreement, kappa, confusion[label][review] counts, per-class agreement and the list
    of disagreements (for a third look), plus the same per reviewer. Crops whose current label was a
    model suggestion accepted in `lrfp label` are left out (counted in `suggested_left_out`).
    """
    if not store.has_reviews():
        return None
    rows = store.latest_reviews()
    compared = [r for r in rows if r["label"] in CLASSES and r["review"] in CLASSES and not r["suggested"]]
    result = _summarize(compared)
    result["reviews"] = len(rows)
    result["not_compared"] = len(rows) - len(compared)
    result["suggested_left_out"] = sum(1 for r in rows if r["suggested"])
    result["by_reviewer"] = {
        name: _summarize([r for r in compared if r["reviewer"] == name])
        for name in sorted({r["reviewer"] for r in rows})
    }
    return result


def _summarize(rows: list[Any]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    pairs = [(r["label"], r["review"]) for r in rows]
    cm = confusion_matrix([a for a, _ in pairs], [b for _, b in pairs], labels=list(CLASSES)) if pairs else None
    confusion = {a: {b: int(cm[i, j]) if cm is not None else 0 for j, b in enumerate(CLASSES)}
                 for i, a in enumerate(CLASSES)}
    per_class = {}
    for c in CLASSES:
        either = sum(1 for a, b in pairs if c in (a, b))
        both = confusion[c][c]
        per_class[c] = {"either": either, "both": both, "agreement": both / either if either else None}
    disagreements = [
        {"crop_id": r["crop_id"], "path": r["path"], "label": r["label"], "annotator": r["annotator"],
         "review": r["review"], "reviewer": r["reviewer"]}
        for r in rows if r["label"] != r["review"]
    ]
    n = len(pairs)
    return {
        "n": n,
        "observed": sum(a == b for a, b in pairs) / n if n else None,
        "kappa": cohen_kappa(pairs),
        "confusion": confusion,
        "per_class": per_class,
        "disagreements": disagreements,
    }
