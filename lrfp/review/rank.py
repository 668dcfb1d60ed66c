"""Rank labeled crops by how likely their label is wrong, with cleanlab (confident learning)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranking:
    """Crops in rank order (most likely wrong first)."""

    order: np.ndarray  # indices into the input, by ascending quality (N,)
    quality: np.ndarray  # cleanlab label quality score per crop, in [0, 1]; low = likely wrong (N,)
    is_issue: np.ndarray  # bool per crop: flagged by cleanlab.filter.find_label_issues (N,)
    suggested: np.ndarray  # class index the out-of-fold model prefers, per crop (N,)


def rank_label_issues(labels: np.ndarray, pred_probs: np.ndarray) -> Ranking:
    """Label quality scores (`cleanlab.rank.get_label_quality_scores`, self-confidence: the out-of-fold
    probability of the given label) and the issue flag (`cleanlab.filter.find_label_issues`, confident
    learning, Northcutt et al. 2021, prune_by_noise_rate).

    labels: class index per crop (N,); pred_probs: out-of-fold class probabilities (N, K), rows sum to 1.
    Ties in quality keep the input order (stable sort).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(pred_probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(labels, probs, method="self_confidence")
    # n_jobs=1: cleanlab's default forks one process per core (multiprocessing's fork start method on Linux) from a
    # process whose torch thread pools have run; a forked child can then wait forever on a lock held by a thread
    # that did not survive the fork (a CI run hung so). The result does not depend on n_jobs (cleanlab's docs).
    is_issue = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    order = np.argsort(quality, kind="stable")
    return Ranking(order=order, quality=quality, is_issue=np.asarray(is_issue, dtype=bool),
                   suggested=probs.argmax(axis=1))
