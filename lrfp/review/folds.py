"""Grouped, stratified k-fold assignment: every crop of a group (face track, video or imported group) in one fold."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lrfp import LABELS
from lrfp.errors import UsageError


def grouped_folds(labels: Sequence[int], groups: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """The fold (0..k-1) of each crop, from scikit-learn's StratifiedGroupKFold (shuffled, seeded).

    labels: class index per crop (N,); groups: group key per crop (N,), e.g. `lrfp.split.group_key`.
    A group never spans two folds, so a crop is never judged by a model that saw its own group
    (its other frames, or its mirrored / masked copy). Returns int array (N,).

    labels are indices into lrfp.LABELS. Raises UsageError when there are fewer groups than folds (some fold would
    be empty) or fewer crops of a class than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups))
    if n_groups < k:
        raise UsageError(
            f"only {n_groups} groups (face tracks / imported groups) among the labeled crops, fewer than "
            f"--folds {k}: a fold would be empty; use --folds {max(2, n_groups)} or label more crops"
        )
    y = np.asarray(labels)
    per_class = np.bincount(y, minlength=len(LABELS)) if len(y) else np.zeros(len(LABELS), dtype=int)
    if per_class.min() < k:
        # StratifiedGroupKFold needs k members in some class (scikit-learn's ValueError "n_splits=5 cannot be greater
        # than the number of members in each class"), and warns where a class has fewer than k (some folds then hold
        # out none of it). Asked as one rule: k crops of each class.
        fewest = int(per_class.min())
        counts = ", ".join(f"{c} {int(n)}" for c, n in zip(LABELS, per_class))
        raise UsageError(
            f"--folds {k} needs at least {k} labeled crops of each class (each fold holds out some of each), but "
            f"there are {counts}: label more crops (`lrfp label`)" + (f" or use --folds {fewest}" if fewest >= 2 else "")
        )
    fold = np.full(len(y), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y, list(groups))):
        fold[held_out] = i
    return fold
