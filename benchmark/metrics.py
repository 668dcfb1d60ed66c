"""Classification metrics for two classes, with intervals: plain numpy, checked against hand-worked cases."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lrfp.bands import FACE_BANDS  # the one band rule, shared with `lrfp stats`

Z95 = 1.959963984540054


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 2) -> np.ndarray:
    """cm[t, p] = how many of class t were predicted as p."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class(cm: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class; 0/0 gives 0 (as scikit-learn's zero_division=0)."""
    out = []
    for k in range(cm.shape[0]):
        tp = cm[k, k]
        pred, support = cm[:, k].sum(), cm[k, :].sum()
        p = tp / pred if pred else 0.0
        r = tp / support if support else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        out.append({"precision": float(p), "recall": float(r), "f1": float(f1), "support": int(support)})
    return out


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present."""
    support = cm.sum(axis=1)
    recalls = [cm[k, k] / support[k] for k in range(cm.shape[0]) if support[k]]
    return float(np.mean(recalls)) if recalls else float("nan")


def roc_auc(y_true: Sequence[int], score: Sequence[float]) -> float:
    """Area under the ROC curve of `score` for class 1: P(score of a positive > a negative), ties count 1/2."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    # Mann-Whitney U with average ranks for ties.
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95% by default)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of the finite values."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if not len(v):
        return (float("nan"), float("nan"))
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)


def band_of(face_px: int) -> str:
    """The face-size band of `face_px` (lrfp.bands.face_band)."""
    from lrfp.bands import face_band

    return face_band(face_px)


def band_accuracy(face_px: Sequence[int], y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, tuple[float, int]]:
    """Accuracy and count per face-size band (NaN accuracy for an empty band)."""
    face = np.asarray(face_px)
    correct = np.asarray(y_true) == np.asarray(y_pred)
    out = {}
    for name, lo, hi in FACE_BANDS:
        m = (face >= lo) & (face < hi)
        n = int(m.sum())
        out[name] = (float(correct[m].mean()) if n else float("nan"), n)
    return out


def classification_metrics(
    y_true: Sequence[int], prob: np.ndarray, losses: Sequence[float], face_px: Sequence[int], class_names: Sequence[str],
) -> dict[str, Any]:
    """Every metric of one evaluation as a flat dict (the columns of a results row)."""
    y = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    pred = prob.argmax(axis=1)
    cm = confusion(y, pred, len(class_names))
    n, k = len(y), int((pred == y).sum())
    lo, hi = wilson_ci(k, n)
    row: dict[str, Any] = {
        "n": n, "correct": k, "accuracy": k / n if n else float("nan"), "acc_ci_low": lo, "acc_ci_high": hi,
        "loss": float(np.mean(losses)) if n else float("nan"), "balanced_accuracy": balanced_accuracy(cm),
        "roc_auc": roc_auc(y, prob[:, 1]),
    }
    for name, stats in zip(class_names, per_class(cm)):
        for key in ("precision", "recall", "f1"):
            row[f"{key}_{name}"] = stats[key]
    for t, tn in enumerate(class_names):
        for p, pn in enumerate(class_names):
            row[f"cm_{tn}_as_{pn}"] = int(cm[t, p])
    for band, (acc, count) in band_accuracy(face_px, y, pred).items():
        row[f"acc_face_{band}"] = acc
        row[f"n_face_{band}"] = count
    return row
