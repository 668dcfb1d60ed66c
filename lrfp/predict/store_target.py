"""`lrfp predict` on the store's crops: class probabilities into the predictions table, never into labels."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from lrfp import LABELS
from lrfp.predict.checkpoint import check_classes
from lrfp.predict.infer import Classifier
from lrfp.store import NewPrediction, Store

log = logging.getLogger(__name__)

CHUNK = 1024  # crops decoded, classified and committed at a time: memory stays bounded, a kill loses one chunk


@dataclass
class StorePredictResult:
    crops: int = 0  # crops predicted (and stored) in this run
    predicted: Counter = field(default_factory=Counter)  # predicted class -> crops
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (crop id, why) left without a prediction
    predicted_total: int = 0  # crops with a prediction in the store after this run
    disagreements: int = 0  # of them, whose prediction differs from their label
    seconds: float = 0.0  # classification time (preprocessing included)


def crops_to_predict(store: Store, all_crops: bool, source_id: int | None = None) -> list[tuple[int, str]]:
    """(crop id, stored path) in id order: the crops without a current label (all_crops=False), or every crop;
    of one source when source_id is given."""
    return store.crop_paths(unlabeled_only=not all_crops, source_id=source_id)


def predict_store(
    store: Store, classifier: Classifier, *, all_crops: bool = False, source_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StorePredictResult:
    """Classify the unlabeled crops (all_crops: every crop; source_id: of that source only) and append one
    prediction per crop.

    The checkpoint's classes must be the store's (raises CheckpointError before anything is read). Each chunk of
    CHUNK crops is committed in one transaction. A crop whose file cannot be decoded is listed in `unreadable`.
    """
    from lrfp.images import ImageDecodeError, load_rgb

    import numpy as np

    check_classes(classifier.ckpt, LABELS)
    ids = crops_to_predict(store, all_crops, source_id)
    res = StorePredictResult()
    ck = classifier.ckpt
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        images, kept = [], []
        for crop_id, rel in chunk:
            try:
                images.append(np.asarray(load_rgb(store.crop_file(rel).read_bytes())))
                kept.append(crop_id)
            except (OSError, ImageDecodeError) as e:
                res.unreadable.append((crop_id, str(e)))
                log.warning("crop %d: %s", crop_id, e)
        if kept:
            probs = classifier.predict_proba(images)
            preds = [
                NewPrediction(crop_id, ck.sha256, ck.config, {c: float(p) for c, p in zip(ck.classes, row)})
                for crop_id, row in zip(kept, probs)
            ]
            store.add_predictions(preds)
            res.crops += len(preds)
            res.predicted.update(p.predicted for p in preds)
        if progress:
            progress(min(start + CHUNK, len(ids)), len(ids))
    res.predicted_total = store.count_predicted_crops()
    res.disagreements = store.count_prediction_disagreements()
    res.seconds = classifier.seconds
    return res
