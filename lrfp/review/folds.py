"""Grouped, stratified k-fold assignment: every crop of a group (face track, video or imported group) in one fold."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lrfp.errors import UsageError


def grouped_folds(labels: Sequence[int], groups: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """The fold (0..k-1) of each crop, from scikit-learn's StratifiedGroupKFold (shuffled, seeded).

    labels: class index per crop (N,); groups: group key per crop (N,), e.g. `lrfp.split.group_key`.
    A group never spans two folds, so a crop is never judged by a model that saw its own group
    (its other frames, or its mirrored / masked copy). Returns int array (N,).

    Raises UsageError when there are fewer groups than folds (some fold would be empty).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(set(groups))
    if n_groups < k:
        raise UsageError(
            f"only {n_groups} groups (face tracks / imported groups) among the labeled crops, fewer than "
            f"--folds {k}: a fold would be empty; use --folds {max(2, n_groups)} or label more crops"
        )
    y = np.asarray(labels)
    fold = np.full(len(y), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y, list(groups))):
        fold[held_out] = i
    return fold
