"""Agreement between a crop's label and its blind review: Cohen's kappa, confusion, disagreements."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lrfp import LABELS, UNUSABLE
from lrfp.store import Store

CLASSES = (*LABELS, UNUSABLE)
"""Classes compared; skips and cleared labels on either side leave a crop out, and so does a current label
that is an accepted model suggestion (it measures the model as much as the annotator)."""


def cohen_kappa(pairs: list[tuple[str, str]], classes: tuple[str, ...] = CLASSES) -> float | None:
    """Cohen's kappa of (first, second) label pairs; None when undefined (no pairs, or one class only)."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in classes) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def agreement(store: Store) -> dict[str, Any] | None:
    """Compare each reviewed crop's current label with the latest review of each reviewer.

    Returns None when the store has no review events. Otherwise a dict with n (compared pairs),
    observed agreement, kappa, confusion[label][review] counts, per-class agreement and the list
    of disagreements (for a third look), plus the same per reviewer. Crops whose current label was a
    model suggestion accepted in `lrfp label` are left out (counted in `suggested_left_out`).
    """
    rows = store.query(
        """SELECT r.crop_id, r.annotator AS reviewer, r.label AS review, cl.label AS label,
                  cl.annotator AS annotator, cl.suggested AS suggested, c.path
           FROM labels r
           JOIN crops c ON c.id = r.crop_id
           LEFT JOIN current_labels cl ON cl.crop_id = r.crop_id
           WHERE r.kind = 'review'
             AND r.id = (SELECT MAX(id) FROM labels WHERE crop_id = r.crop_id AND kind = 'review'
                         AND annotator = r.annotator)
           ORDER BY r.crop_id, r.annotator"""
    )
    if not store.query("SELECT 1 FROM labels WHERE kind = 'review' LIMIT 1"):
        return None
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
    pairs = [(r["label"], r["review"]) for r in rows]
    confusion = {a: {b: 0 for b in CLASSES} for a in CLASSES}
    for a, b in pairs:
        confusion[a][b] += 1
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
