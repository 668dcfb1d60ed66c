"""Classification metrics for two classes, with intervals: scikit-learn and SciPy, checked against hand-worked cases."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lrfp.bands import FACE_BANDS, face_band  # the one band rule, shared with `lrfp stats`

CONFIDENCE = 0.95
"""Confidence level of the accuracy interval (Wilson score interval)."""


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of predictions equal to the truth; NaN for no samples."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 2) -> np.ndarray:
    """cm[t, p] = how many of class t were predicted as p; shape (n_classes, n_classes), int64."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).astype(np.int64)


def per_class(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int = 2) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class 0..n_classes-1; 0/0 gives 0 (zero_division=0)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(n_classes)), zero_division=0)
    return [{"precision": float(p[k]), "recall": float(r[k]), "f1": float(f1[k]), "support": int(support[k])}
            for k in range(n_classes)]


def balanced_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean recall over the classes present in y_true; NaN for no samples."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    if not len(y_true):
        return float("nan")
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": expected on tiny test sets
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def roc_auc(y_true: Sequence[int], score: Sequence[float]) -> float:
    """Area under the ROC curve of `score` for class 1 (ties count 1/2); NaN when one class is absent."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true)
    if not ((y == 1).any() and (y == 0).any()):
        return float("nan")
    return float(roc_auc_score(y, np.asarray(score, dtype=np.float64)))


def wilson_ci(k: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (95% by default) of the proportion k/n; (NaN, NaN) for n = 0 or a NaN k.

    k may be a mean count: the mean accuracy over seeds of runs tested on the same n images is shown with
    `wilson_ci(mean_accuracy * n, n)`, Wilson's interval at exactly that accuracy on n images: the test set's
    sampling uncertainty. It does not shrink with more seeds (every seed sees the same n images: pooling the
    S x n predictions as independent trials would understate it); the seeds' own spread is reported as their
    standard deviation beside it. The interval always contains k/n.

    Source: Wilson (1927), the closed form of Brown, Cai & DasGupta (2001), eq. (4):
    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z the normal quantile (SciPy). For a whole k it
    equals SciPy's `binomtest(k, n).proportion_ci(method="wilson")` (tests/test_bench_metrics.py checks).
    Raises ValueError for k outside [0, n] (beyond float rounding of a mean).
    """
    from scipy.stats import norm

    if n <= 0 or math.isnan(k):
        return (float("nan"), float("nan"))
    if not -1e-9 * n <= k <= n * (1 + 1e-9):
        raise ValueError(f"wilson_ci needs 0 <= k <= n, not k={k}, n={n}")
    k = float(min(max(k, 0), n))  # a mean of k_i / n times n may land a rounding error outside [0, n]
    z = float(norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (0.0 if k == 0 else max(0.0, center - half), 1.0 if k == n else min(1.0, center + half))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of the finite values."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if not len(v):
        return (float("nan"), float("nan"))
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)


def band_of(face_px: int) -> str:
    """The face-size band of `face_px` (lrfp.bands.face_band, shared with `lrfp stats`)."""
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
    n_classes = len(class_names)
    n, k = len(y), int((pred == y).sum())
    lo, hi = wilson_ci(k, n)
    row: dict[str, Any] = {
        "n": n, "correct": k, "accuracy": k / n if n else float("nan"), "acc_ci_low": lo, "acc_ci_high": hi,
        "loss": float(np.mean(losses)) if n else float("nan"), "balanced_accuracy": balanced_accuracy(y, pred),
        "roc_auc": roc_auc(y, prob[:, 1]),
    }
    for name, stats in zip(class_names, per_class(y, pred, n_classes)):
        for key in ("precision", "recall", "f1"):
            row[f"{key}_{name}"] = stats[key]
    for t, tn in enumerate(class_names):
        for p, pn in enumerate(class_names):
            row[f"cm_{tn}_as_{pn}"] = int(cm[t, p])
    for band, (acc, count) in band_accuracy(face_px, y, pred).items():
        row[f"acc_face_{band}"] = acc
        row[f"n_face_{band}"] = count
    return row
