"""`lrfp predict` on a folder of images: a prediction per file; with class subfolders, accuracy and its interval."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lrfp.atomic import atomic_path
from lrfp.errors import InputError
from lrfp.predict.infer import Classifier

log = logging.getLogger(__name__)


@dataclass
class FolderPredictResult:
    folder: Path
    rows: list[dict[str, Any]] = field(default_factory=list)  # file, [true_class], p_<class>..., predicted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    labeled: int = 0  # files under a class subfolder
    correct: int = 0
    accuracy: float | None = None  # correct / labeled, None without class subfolders
    ci95: tuple[float, float] | None = None  # Wilson score interval (benchmark.metrics.wilson_ci, as bench's)
    files: list[Path] = field(default_factory=list)


def predict_folder(
    folder: Path, classifier: Classifier, out_csv: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FolderPredictResult:
    """Classify every image under `folder` (recursively). A file's class is its top subfolder when that is one
    of the checkpoint's classes (with_mask/, without_mask/); then accuracy and its 95% Wilson interval are given.

    Raises InputError for a folder with no image. Unreadable images are skipped and listed, and so are a broken
    symbolic link, a FIFO or a folder named like an image.
    """
    import numpy as np

    from benchmark.metrics import wilson_ci
    from lrfp.images import ImageDecodeError, image_files, load_rgb

    folder = Path(folder)
    files, not_files = image_files(folder)  # broken links, FIFOs, folders named x.jpg: listed as skipped
    if not files:
        raise InputError(f"{folder} holds no image files ({', '.join(sorted({'.jpg', '.png', '.webp'}))}, ...)"
                         + (f"; left out: {not_files[0][0]}: {not_files[0][1]}" if not_files else ""))
    classes = classifier.classes
    res = FolderPredictResult(folder=folder)
    res.skipped.extend(not_files)
    images, kept = [], []
    for i, p in enumerate(files):
        try:
            images.append(np.asarray(load_rgb(p.read_bytes())))
            kept.append(p)
        except (OSError, ImageDecodeError) as e:
            res.skipped.append((str(p.relative_to(folder)), str(e)))
        if progress and (i % 64 == 0 or i == len(files) - 1):
            progress(i + 1, len(files))
    if not kept:
        raise InputError(f"{folder}: none of its {len(files)} image files decodes (first: {res.skipped[0][1]})")
    probs = classifier.predict_proba(images)
    for p, row in zip(kept, probs):
        rel = p.relative_to(folder)
        true = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in classes else None
        pred = classes[int(row.argmax())]
        res.rows.append({"file": str(rel), "true_class": true or "", **{f"p_{c}": float(v) for c, v in zip(classes, row)},
                         "predicted": pred})
        if true is not None:
            res.labeled += 1
            res.correct += int(pred == true)
    if res.labeled:
        res.accuracy = res.correct / res.labeled
        res.ci95 = wilson_ci(res.correct, res.labeled)
    if out_csv is not None:
        out_csv = Path(out_csv)
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:  # never half a CSV (Ctrl-C, full disk)
            w = csv.DictWriter(fh, fieldnames=["file", "true_class", *[f"p_{c}" for c in classes], "predicted"])
            w.writeheader()
            for r in res.rows:
                w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
        res.files.append(out_csv)
    return res
