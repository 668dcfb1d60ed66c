"""`lrfp import`: bring a labeled image folder (one subfolder per class) into the store."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lrfp import LABELS
from lrfp.errors import InputError, UsageError
from lrfp.events import ProgressCallback, ProgressEvent
from lrfp.images import ImageDecodeError, downscale, encode_png, load_rgb
from lrfp.store import CropOrigin, Store, sha256_bytes

log = logging.getLogger(__name__)

IGNORE = "ignore"
DEFAULT_CLASS_MAP = {label: label for label in LABELS}


@dataclass(frozen=True)
class ImportConfig:
    folder: Path
    source: str
    class_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLASS_MAP))
    groups_csv: Path | None = None
    license: str | None = None
    max_side: int | None = None
    annotator: str | None = None

    def check(self) -> None:
        """Raise UsageError naming the option when a field is unusable (called by import_folder)."""
        if not self.source or not self.source.strip():
            raise UsageError("--source must not be empty")
        if self.max_side is not None and self.max_side < 1:
            raise UsageError(f"--max-side {self.max_side}: must be a positive number of pixels")
        bad = sorted(f"{folder}={label}" for folder, label in self.class_map.items() if label not in (*LABELS, IGNORE))
        if bad:
            raise UsageError(f"--map {bad[0]}: label must be one of {', '.join((*LABELS, IGNORE))}")


@dataclass
class ImportResult:
    source: str
    files: int = 0
    imported: int = 0
    duplicates: int = 0
    already_imported: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    per_label: Counter = field(default_factory=Counter)
    grouped: int = 0
    ungrouped: int = 0

    @property
    def skipped_reasons(self) -> Counter:
        return Counter(reason.split(" (")[0] for _, reason in self.skipped)


def parse_class_map(pairs: list[str]) -> dict[str, str]:
    """`--map FOLDER=LABEL` pairs on top of the defaults; LABEL is a class or `ignore`."""
    mapping = dict(DEFAULT_CLASS_MAP)
    for pair in pairs:
        folder, sep, label = pair.partition("=")
        if not sep or not folder or not label:
            raise InputError(f"--map {pair!r}: expected FOLDER=LABEL, e.g. --map mask=with_mask")
        if label not in (*LABELS, IGNORE):
            raise InputError(f"--map {pair!r}: label must be one of {', '.join((*LABELS, IGNORE))}")
        mapping[folder] = label
    return mapping


def _class_folders(cfg: ImportConfig) -> list[tuple[Path, str]]:
    folder = cfg.folder
    if not folder.exists():
        raise InputError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise InputError(
            f"folder {folder} has no class subfolders: expected {'/, '.join(LABELS)}/ (or others named with --map)"
        )
    unmapped = [p.name for p in subdirs if p.name not in cfg.class_map]
    if unmapped:
        raise InputError(
            f"folder {folder}: subfolder(s) {', '.join(unmapped)} not mapped to a class; "
            f"use --map {unmapped[0]}=with_mask (or without_mask, or ignore)"
        )
    pairs = [(p, cfg.class_map[p.name]) for p in subdirs if cfg.class_map[p.name] != IGNORE]
    if not pairs:
        raise InputError(f"folder {folder}: every subfolder is mapped to 'ignore'")
    return pairs


def _list_files(folder: Path, class_dirs: list[tuple[Path, str]]) -> list[tuple[str, Path, str]]:
    """(relative path, absolute path, label) of every file below the class folders, sorted."""
    files = []
    for class_dir, label in class_dirs:
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                files.append((path.relative_to(folder).as_posix(), path, label))
    return files


def read_groups(csv_path: Path, relpaths: list[str], source: str) -> dict[str, str]:
    """Map relative paths to group ids from a CSV with columns file,group_id (and optional class).

    A row names a file by its path below the import folder, by `class` + file name, or by bare
    file name (then every class folder's file of that name gets the group). Rows naming no file
    of the folder are an error: the CSV probably belongs to another folder.
    """
    if not csv_path.is_file():
        raise InputError(f"groups CSV {csv_path} does not exist")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in ("file", "group_id") if c not in columns]
            if missing:
                raise InputError(
                    f"groups CSV {csv_path}: missing column(s) {', '.join(missing)} "
                    f"(found: {', '.join(columns) or 'no header'}; need file,group_id)"
                )
            rows = [({(k or "").strip(): (v or "").strip() for k, v in row.items()}, reader.line_num) for row in reader]
    except UnicodeDecodeError as e:
        raise InputError(f"groups CSV {csv_path} is not UTF-8 text: {e}") from e
    by_name: dict[str, list[str]] = {}
    known = set(relpaths)
    for rel in relpaths:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    groups: dict[str, str] = {}
    unknown: list[str] = []
    for row, line in rows:
        name, gid, cls = row.get("file", ""), row.get("group_id", ""), row.get("class", "")
        if not name or not gid:
            raise InputError(f"{csv_path}:{line}: empty file or group_id")
        if cls:
            targets = [f"{cls}/{name}"] if f"{cls}/{name}" in known else []
        elif name in known:
            targets = [name]
        else:
            targets = by_name.get(name, [])
        if not targets:
            unknown.append(f"{cls + '/' if cls else ''}{name} (line {line})")
            continue
        for rel in targets:
            groups[rel] = f"{source}:{gid}"
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(f"groups CSV {csv_path}: {len(unknown)} row(s) name files not in the folder: {shown}")
    return groups


def import_folder(
    store: Store, cfg: ImportConfig, progress: ProgressCallback | None = None
) -> ImportResult:
    """Import every image below the class folders. Idempotent: files seen before are not re-read.

    Each file is committed on its own (crop file, crop row, label, bookkeeping row in one step),
    so an interrupted import keeps what it stored and a rerun completes it. Raises UsageError for a bad
    `cfg`, InputError for a missing folder, unmapped class folders or a bad groups CSV.
    """
    cfg.check()
    folder = cfg.folder.expanduser().resolve()
    cfg = ImportConfig(**{**cfg.__dict__, "folder": folder})
    class_dirs = _class_folders(cfg)
    files = _list_files(folder, class_dirs)
    groups = read_groups(cfg.groups_csv, [rel for rel, _, _ in files], cfg.source) if cfg.groups_csv else {}

    existing = store.find_source(cfg.source)
    if existing is not None and (existing["kind"] != "folder" or existing["path"] != str(folder)):
        where = existing["path"] or existing["url"]
        raise InputError(
            f"source {cfg.source!r} already exists in the store for {where}; pick another --source name"
        )
    source_id = store.upsert_source(
        cfg.source, "folder", path=str(folder), title=folder.name,
        license=cfg.license if cfg.license is not None else (existing["license"] if existing else None),
        status="importing",
    )
    annotator = cfg.annotator or f"import:{cfg.source}"
    done_before = store.imported_relpaths(source_id)
    result = ImportResult(source=cfg.source, files=len(files))
    for i, (rel, path, label) in enumerate(files):
        if rel in done_before:
            result.already_imported += 1
        else:
            status, reason = _import_one(store, source_id, rel, path, label, groups.get(rel), cfg, annotator)
            if status == "imported":
                result.imported += 1
                result.per_label[label] += 1
            elif status == "duplicate":
                result.duplicates += 1
            elif status == "already":
                result.already_imported += 1
            else:
                result.skipped.append((rel, reason or status))
        if progress:
            progress(ProgressEvent("import", i + 1, len(files)))
    if groups:
        result.grouped = sum(1 for rel, _, _ in files if rel in groups)
        result.ungrouped = len(files) - result.grouped
    store.set_source_status(source_id, "ok")
    return result


def _import_one(
    store: Store, source_id: int, rel: str, path: Path, label: str, group: str | None,
    cfg: ImportConfig, annotator: str,
) -> tuple[str, str | None]:
    try:
        data = path.read_bytes()
    except OSError as e:
        return _record_skip(store, source_id, rel, None, f"unreadable ({e.strerror})")
    file_sha = sha256_bytes(data)
    with store.transaction():
        if store.is_imported(source_id, rel):  # another process importing the same folder got here first
            return "already", None
        dup = store.imported_file_with_sha256(file_sha)
        if dup is not None:
            if dup["label"] is not None and dup["label"] != label:
                reason = f"same bytes as {dup['name']}/{dup['relpath']}, which is labeled {dup['label']}"
                store.record_imported_file(source_id, rel, file_sha, None, "conflict", reason)
                return "conflict", reason
            store.record_imported_file(source_id, rel, file_sha, dup["crop_id"], "duplicate", f"same bytes as {dup['relpath']}")
            return "duplicate", None
    try:
        image = downscale(load_rgb(data), cfg.max_side)
    except ImageDecodeError as e:
        return _record_skip(store, source_id, rel, file_sha, str(e))
    png = encode_png(image)
    origin = CropOrigin(original=rel, group_id=group, meta={"file_sha256": file_sha})
    with store.transaction():
        if store.is_imported(source_id, rel):
            return "already", None
        crop_id, created = store.add_crop(
            source_id, png, image.width, image.height, origin,
            label=label, annotator=annotator, label_kind="import", conn_in_transaction=True,
        )
        status = "imported" if created else "duplicate"
        store.record_imported_file(source_id, rel, file_sha, crop_id, status, None if created else "same pixels as another file")
    return status, None


def _record_skip(store: Store, source_id: int, rel: str, file_sha: str | None, reason: str) -> tuple[str, str]:
    with store.transaction():
        store.record_imported_file(source_id, rel, file_sha, None, "skipped", reason)
    return "skipped", reason
