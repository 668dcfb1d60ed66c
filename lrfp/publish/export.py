"""Write a stored split as Hub-layout parquet shards (image bytes embedded) plus its dataset card."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfp import LABELS, SUBSETS
from lrfp.crop_files import read_crop_bytes
from lrfp.errors import NotFoundError, PublishError, PublishInputError
from lrfp.events import ProgressCallback, ProgressEvent
from lrfp.face_size import face_px
from lrfp.paths import make_staging_dir, unwritable_message
from lrfp.split import group_key
from lrfp.store import Store

log = logging.getLogger(__name__)

FEATURE_NAMES = (
    "image", "label", "crop_sha256", "source", "url", "frame_index", "time_s", "box", "face_px", "group", "track",
    "source_file",
)
"""Column names of the published parquet, in order (`lrfp bench --dataset` reads them)."""
MAX_SHARD_BYTES = 256 * 2**20


@dataclass(frozen=True)
class PublishConfig:
    out: Path
    split: str | None = None
    overwrite: bool = False
    annotations_only: bool = False
    pretty_name: str = "Low-Res Faces in Peru (lrfp)"
    max_shard_bytes: int = MAX_SHARD_BYTES

    def check(self) -> None:
        """Raise PublishInputError (exit 2) naming the option when a field is unusable (called by export_dataset
        and publish_dataset before anything else)."""
        if not self.pretty_name or not self.pretty_name.strip():
            raise PublishInputError("--pretty-name must not be empty (it is the dataset card's title)")
        if self.max_shard_bytes < 1:
            raise PublishInputError(f"max_shard_bytes {self.max_shard_bytes}: must be at least 1 byte")


@dataclass
class PublishResult:
    out: Path
    split: str
    annotations_only: bool
    counts: dict[str, dict[str, int]]  # subset -> label -> crops
    files: list[Path] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # crops of the split not published, by reason
    url: str | None = None

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())


def features(annotations_only: bool):
    """The datasets.Features of the published parquet (no `image` column for --annotations-only)."""
    from datasets import ClassLabel, Features, Image, List, Value

    cols = {
        "image": Image(),
        "label": ClassLabel(names=list(LABELS)),
        "crop_sha256": Value("string"),
        "source": Value("string"),
        "url": Value("string"),
        "frame_index": Value("int64"),
        "time_s": Value("float64"),
        "box": List(Value("int64"), length=4),
        "face_px": Value("int64"),
        "group": Value("string"),
        "track": Value("string"),
        "source_file": Value("string"),
    }
    if annotations_only:
        del cols["image"]
    return Features(cols)


def split_rows(store: Store, split: str) -> tuple[list[Any], dict[str, int]]:
    """Rows of the split whose current label is still a class, and counts of those left out."""
    rows = store.split_crops(split)
    kept = [r for r in rows if r["label"] in LABELS]
    left_out = {}
    if len(kept) < len(rows):
        left_out["relabeled since the split"] = len(rows) - len(kept)
    return kept, left_out


def check_licenses(store: Store, rows: list[Any], annotations_only: bool) -> None:
    """Refuse to publish pixels of a source whose license is unknown."""
    used = sorted({r["source_name"] for r in rows})
    unknown = [s for s in store.sources() if s["name"] in used and not (s["license"] or "").strip()]
    if unknown and not annotations_only:
        names = ", ".join(f"{s['name']} ({s['url'] or s['path']})" for s in unknown)
        raise PublishError(
            f"source(s) with unknown license: {names}. Their face crops cannot be published; record a license "
            "(`lrfp import ... --license`, or the manifest's license column for `lrfp fetch`), make a split "
            "without them, or publish with --annotations-only"
        )


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PublishInputError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        n = sum(1 for _ in out.iterdir())
        raise PublishInputError(
            f"--out {out} is not empty ({n} entries); use --overwrite to replace its README.md and data/"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PublishError(unwritable_message("--out", out, e)) from e


def _move_into(staged: Path, out: Path) -> None:
    """Replace out/README.md and out/data with the staged ones; anything else in --out (say a clone's
    .git) is left alone, and is not uploaded either."""
    if not out.exists():
        staged.rename(out)
        return
    if (out / "data").is_dir():
        shutil.rmtree(out / "data")
    (staged / "data").rename(out / "data")
    (staged / "README.md").replace(out / "README.md")
    staged.rmdir()


def _record(row: Any, image: bool, store: Store, group_by: str, merged_into: dict[str, str]) -> dict[str, Any]:
    has_box = row["box_x"] is not None
    rec = {
        "label": LABELS.index(row["label"]),
        "crop_sha256": row["sha256"],
        "source": row["source_name"],
        "url": row["source_url"] if row["source_kind"] == "video" else None,
        "frame_index": row["frame_index"],
        "time_s": row["time_s"],
        "box": [row["box_x"], row["box_y"], row["box_w"], row["box_h"]] if has_box else None,
        "face_px": face_px(row),
        "group": merged_into.get(key := group_key(row, group_by)[1], key),
        "track": row["track_id"],
        # an imported file's path below its folder (as `lrfp import` read it), so a row maps back to the file
        "source_file": row["original"] if row["source_kind"] == "folder" else None,
    }
    if image:
        rec = {"image": {"bytes": read_crop_bytes(store.root, row), "path": None}, **rec}
    return rec


def export_dataset(
    store: Store, cfg: PublishConfig, progress: ProgressCallback | None = None,
) -> PublishResult:
    """Write `cfg.out`: data/{train,validation,test}-NNNNN-of-NNNNN.parquet and README.md.

    Nothing is written on refusal (no split, unknown license, non-empty --out). The files are
    built beside --out and moved into place at the end, so a failure leaves --out as it was;
    --overwrite replaces only README.md and data/ in it. Raises PublishInputError for a bad `cfg`.
    """
    cfg.check()
    import datasets
    from datasets import Dataset

    from lrfp.publish.card import write_card

    try:
        split = store.resolve_split(cfg.split)
    except NotFoundError as e:  # an unknown --split, or no split yet: the store given cannot be used as it is (exit 2)
        raise PublishInputError(f"nothing to publish: {e}") from e
    rows, left_out = split_rows(store, split)
    if not rows:
        raise PublishError(f"nothing to publish: split {split!r} has no crop labeled with_mask/without_mask")
    check_licenses(store, rows, cfg.annotations_only)
    out = cfg.out.expanduser().resolve()
    _prepare_out(out, cfg.overwrite)

    info = store.split_info(split)
    group_by = info["params"].get("group_by", "track")
    merged_into = info["report"].get("dedupe", {}).get("merged_into", {})
    feats = features(cfg.annotations_only)
    counts = {s: {lab: 0 for lab in LABELS} for s in SUBSETS}
    for r in rows:
        counts[r["subset"]][r["label"]] += 1

    try:
        tmp = make_staging_dir(out.parent, prefix=f".{out.name}.")  # the mode of a plain mkdir, not 0700
    except OSError as e:
        if not out.exists():
            raise PublishError(unwritable_message("--out", out, e)) from e
        raise PublishError(f"cannot write beside --out {out}: the export is built in {out.parent} and then moved into "
                           f"--out, and {out.parent} refuses it ({e.strerror or e}); give another --out, or change the "
                           f"permissions of {out.parent}") from e
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the caller shows one bar for the whole export
    try:
        (tmp / "data").mkdir()
        files: list[Path] = []
        split_sizes: dict[str, dict[str, int]] = {}
        done = 0
        for subset in SUBSETS:
            sub_rows = [r for r in rows if r["subset"] == subset]
            if not sub_rows:
                continue
            records = []
            for r in sub_rows:
                records.append(_record(r, not cfg.annotations_only, store, group_by, merged_into))
                done += 1
                if progress and (done % 100 == 0 or done == len(rows)):
                    progress(ProgressEvent("export", done, len(rows)))
            ds = Dataset.from_list(records, features=feats)
            n_shards = max(1, math.ceil(ds.data.nbytes / cfg.max_shard_bytes))
            for i in range(n_shards):
                path = tmp / "data" / f"{subset}-{i:05d}-of-{n_shards:05d}.parquet"
                ds.shard(n_shards, i, contiguous=True).to_parquet(str(path))
                files.append(path)
            split_sizes[subset] = {"num_examples": len(ds), "num_bytes": int(ds.data.nbytes)}
        write_card(tmp / "README.md", store, split, rows, feats, split_sizes, files, cfg)
        _move_into(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    final = [out / f.relative_to(tmp) for f in files] + [out / "README.md"]
    log.info("published split %s: %d crops to %s", split, len(rows), out)
    return PublishResult(out, split, cfg.annotations_only, counts, final, left_out)
