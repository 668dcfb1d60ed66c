"""Stores for the labeling tests: real SMFD faces downscaled to street-crop size, without labels."""

from __future__ import annotations

import csv
from pathlib import Path

from lrfp.images import downscale, encode_png, load_rgb
from lrfp.store import CropOrigin, Store, open_store


def smfd_files(smfd: Path, n: int) -> list[Path]:
    """The first n SMFD files (alternating classes), in a fixed order."""
    with open(smfd / "smfd_groups.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_class: dict[str, list[Path]] = {}
    for r in rows:
        by_class.setdefault(r["class"], []).append(smfd / r["class"] / r["file"])
    classes = sorted(by_class)
    return [by_class[classes[i % len(classes)]][i // len(classes)] for i in range(n)]


def unlabeled_store(data_dir: Path, smfd: Path, n: int = 24, sources: tuple[str, ...] = ("cam-a", "cam-b"),
                    max_side: int = 40, with_frame: bool = False) -> Store:
    """A store with n unlabeled SMFD crops spread over `sources`, each with a time_s (order: source, time).

    With with_frame, the first crop shown gets a context frame: the full-size SMFD photo, with the crop's box.
    """
    store = open_store(data_dir)
    ids = {name: store.upsert_source(name, "video", status="ok") for name in sources}
    first_shown = max(i for i in range(n) if i % len(sources) == 0)  # first source, earliest time
    for i, path in enumerate(smfd_files(smfd, n)):
        src = sources[i % len(sources)]
        full = load_rgb(path.read_bytes())
        im = downscale(full, max_side)
        frame_id, box = None, None
        if with_frame and i == first_shown:
            frame_id = store.add_frame(ids[src], 0, 0.0, full.width, full.height, image=encode_png(full), ext="png")
            box = (full.width // 4, full.height // 4, full.width // 2, full.height // 2)
        store.add_crop(ids[src], encode_png(im), im.width, im.height, CropOrigin(
            original=path.name, time_s=float(n - i), frame_index=i, frame_id=frame_id, box=box,
            score=0.9, detector="test"))
    return store


def events(store: Store, kind: str | None = None) -> list[tuple[int, str | None, str, str]]:
    """Every label event as (crop_id, label, annotator, kind), in commit order."""
    sql = "SELECT crop_id, label, annotator, kind FROM labels"
    args: tuple = ()
    if kind:
        sql += " WHERE kind = ?"
        args = (kind,)
    return [tuple(r) for r in store.query(sql + " ORDER BY id", args)]


def source_time_order(store: Store, source: str | None = None) -> list[int]:
    """Crop ids in the app's default order (source, then time), optionally of one source."""
    sql = "SELECT c.id FROM crops c JOIN sources s ON s.id = c.source_id"
    args = ()
    if source:
        sql += " WHERE s.name = ?"
        args = (source,)
    return [r[0] for r in store.query(sql + " ORDER BY c.source_id, c.time_s", args)]
