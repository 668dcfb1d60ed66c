"""`lrfp review-labels` as one library call: labeled crops -> grouped folds -> out-of-fold probabilities ->
cleanlab ranking -> stored as a run in the store's `label_issues` table."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np

from lrfp import LABELS
from lrfp.errors import UsageError
from lrfp.review.oof import OofConfig
from lrfp.split import GROUP_BY, group_key
from lrfp.store import Store, now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewConfig:
    """What `lrfp review-labels` does: k grouped folds, one OofConfig model per fold."""

    folds: int = 5
    group_by: str = "track"  # the split's rule: face track, else video, else imported group (lrfp.split.group_key)
    oof: OofConfig = field(default_factory=OofConfig)
    store_anyway: bool = False  # store the ranking even when the model does not beat the majority class

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise UsageError(f"--folds {self.folds}: needs at least 2 (each crop is judged by a model trained on the others)")
        if self.oof.epochs < 1:
            raise UsageError(f"--epochs {self.oof.epochs}: must be at least 1")
        if self.oof.batch_size < 2:
            raise UsageError(f"--batch-size {self.oof.batch_size}: must be at least 2")
        if self.group_by not in GROUP_BY:
            raise UsageError(f"--group-by {self.group_by!r}: choose one of {', '.join(GROUP_BY)}")


@dataclass
class ReviewResult:
    run_id: str
    created_at: str
    n: int
    n_issues: int
    oof_accuracy: float
    rows: list[dict[str, Any]]  # rank order: crop_id, rank, quality, given_label, suggested_label, p_suggested, is_issue, fold, path, original
    unreadable: list[dict[str, Any]] = field(default_factory=list)  # crops left out: file missing or corrupt
    oof_ci95: tuple[float, float] = (float("nan"), float("nan"))  # Wilson 95% interval of oof_accuracy
    majority: str = ""  # the most frequent given label
    majority_rate: float = float("nan")  # its share: the accuracy of always answering it
    stored: bool = True  # False: the model did not beat the majority class, the ranking was not stored

    @property
    def beats_majority(self) -> bool:
        """Whether the out-of-fold accuracy's 95% interval lies above the majority-class rate (see
        `review_labels`)."""
        return self.oof_ci95[0] > self.majority_rate


def labeled_crops(store: Store) -> list[Any]:
    """Crops whose current label is a class (unusable, skipped and unlabeled are left out), with their source."""
    return [r for r in store.crops_with_labels() if r["label"] in LABELS]


def check_review_input(rows: list[Any], cfg: ReviewConfig) -> None:
    """Refuse, before any work, inputs out-of-fold probabilities cannot be made from."""
    if len(rows) < cfg.folds:
        raise UsageError(
            f"only {len(rows)} crops are labeled with_mask/without_mask, fewer than --folds {cfg.folds}: "
            "label more crops (`lrfp label`) or lower --folds"
        )
    per_class = Counter(r["label"] for r in rows)
    if len(per_class) < len(LABELS):
        only = next(iter(per_class), "none")
        raise UsageError(
            f"every labeled crop is {only}: a model cannot learn, and cleanlab cannot rank, with one class only; "
            f"label some {' and '.join(c for c in LABELS if c not in per_class)} crops first (`lrfp label`)"
        )


def review_labels(
    store: Store, cfg: ReviewConfig, progress: Callable[[str, int, int], None] | None = None,
) -> ReviewResult:
    """Rank every labeled crop by how likely its label is wrong and store the ranking as a new run.

    progress(stage, done, total) with stage "decode" or "fold". Raises UsageError (bad input, before
    any training). The run is written in one transaction; earlier runs are kept.

    A model no better than always answering the most frequent label (the Wilson 95% interval of its out-of-fold
    accuracy not above that label's share) ranks by noise: cleanlab then flags hundreds of crops. Such a run is
    returned with `stored` False and not stored (the latest stored ranking, which `lrfp label --queue suspects`
    opens, stays), unless cfg.store_anyway.
    """
    from benchmark.metrics import wilson_ci
    from benchmark.data import Subset
    from lrfp.images import ImageDecodeError, load_rgb
    from benchmark.registry import check_input_size, get_spec
    from lrfp.review.folds import grouped_folds
    from lrfp.review.oof import out_of_fold_probabilities
    from lrfp.review.rank import rank_label_issues

    from lrfp.errors import BenchError

    try:
        check_input_size(get_spec(cfg.oof.model), cfg.oof.input_size)
    except BenchError as e:
        raise UsageError(str(e)) from None
    rows = labeled_crops(store)
    check_review_input(rows, cfg)
    if cfg.oof.device == "auto" or cfg.oof.device not in ("cpu",):
        from lrfp.predict.infer import resolve_device  # the bench's device rule, as `lrfp predict` applies it

        cfg = replace(cfg, oof=replace(cfg.oof, device=resolve_device(cfg.oof.device)))
    grouped_folds([LABELS.index(r["label"]) for r in rows], [group_key(r, cfg.group_by)[1] for r in rows],
                  cfg.folds, cfg.oof.seed)  # fails fast when there are fewer groups than folds
    images, readable, unreadable = [], [], []
    for i, r in enumerate(rows):
        try:
            images.append(np.asarray(load_rgb(store.crop_file(r["path"]).read_bytes())))
            readable.append(r)
        except (OSError, ImageDecodeError) as e:  # a missing or corrupt file: left out, reported
            unreadable.append({"crop_id": int(r["id"]), "path": r["path"], "error": str(e)})
        if progress and ((i + 1) % 256 == 0 or i + 1 == len(rows)):
            progress("decode", i + 1, len(rows))
    if unreadable:
        rows = readable
        check_review_input(rows, cfg)
    labels = np.asarray([LABELS.index(r["label"]) for r in rows], dtype=np.int64)
    folds = grouped_folds(labels, [group_key(r, cfg.group_by)[1] for r in rows], cfg.folds, cfg.oof.seed)
    x = Subset(images, labels, np.zeros(len(rows)), [str(r["id"]) for r in rows]).tensor(cfg.oof.input_size)
    probs = out_of_fold_probabilities(x, labels, folds, cfg.oof,
                                      progress=(lambda d, t: progress("fold", d, t)) if progress else None)
    ranking = rank_label_issues(labels, probs)
    out_rows = []
    for rank, i in enumerate(ranking.order, start=1):
        out_rows.append({
            "crop_id": int(rows[i]["id"]), "rank": rank, "quality": float(ranking.quality[i]),
            "given_label": rows[i]["label"], "suggested_label": LABELS[int(ranking.suggested[i])],
            "p_suggested": float(probs[i].max()), "is_issue": bool(ranking.is_issue[i]), "fold": int(folds[i]),
            "path": rows[i]["path"], "original": rows[i]["original"],
        })
    run_id, created = uuid.uuid4().hex[:12], now()
    n_issues = int(ranking.is_issue.sum())
    correct = int((probs.argmax(1) == labels).sum())
    counts = Counter(r["label"] for r in rows)
    majority, n_majority = counts.most_common(1)[0]
    res = ReviewResult(run_id, created, len(rows), n_issues, correct / len(rows), out_rows, unreadable,
                       oof_ci95=wilson_ci(correct, len(rows)), majority=majority, majority_rate=n_majority / len(rows))
    res.stored = res.beats_majority or cfg.store_anyway
    if res.stored:
        params = {"folds": cfg.folds, "group_by": cfg.group_by, **asdict(cfg.oof)}
        store.save_label_issues(run_id, created, params, out_rows)
    log.info("review-labels run %s: %d crops, %d flagged, out-of-fold accuracy %.3f, stored %s", run_id, len(rows),
             n_issues, res.oof_accuracy, res.stored)
    return res
