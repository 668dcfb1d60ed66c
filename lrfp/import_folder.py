"""`lrfp import`: bring a labeled image folder (one subfolder per class) into the store."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfp import LABELS, run_lock
from lrfp.csvfile import parse_csv, read_csv_text
from lrfp.errors import CropFileError, InputError, NotFoundError, UsageError
from lrfp.events import ProgressCallback, ProgressEvent
from lrfp.images import ImageDecodeError, downscale, encode_png, load_rgb
from lrfp.names import NAME_RULE, name_problem
from lrfp.paths import check_input_file, check_input_folder
from lrfp.store import DB_NAME, IMPORT_REDO_KEY, CropOrigin, Store, sha256_bytes

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
    redo: bool = False

    def check(self) -> None:
        """Raise InputError or UsageError (exit 2) naming the option when a field is unusable: called by
        import_folder, and by the CLI before a store is opened or created (nothing touched)."""
        check_source_name(self.source)
        check_input_folder(self.folder, "folder")
        if self.groups_csv is not None:
            check_input_file(self.groups_csv, "groups CSV")
        if self.license is not None and not self.license.strip():
            raise InputError("--license must not be empty: give the images' license, e.g. --license CC-BY-4.0")
        if self.max_side is not None and self.max_side < 8:
            raise InputError(f"--max-side {self.max_side}: must be at least 8 (px)")
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
    unchanged: int = 0  # --redo: crops that came out identical (kept, with their labels)
    replaced: int = 0  # --redo: old crops removed because the new settings give other pixels
    license_recorded: str | None = None  # a --license that changed the source's, on files imported before (kept)
    labels_carried: int = 0  # --redo: new crops given the label events people gave the file's old crop
    kept_for_splits: int = 0  # --redo: old crops kept because a saved split holds them
    redo: bool = False  # files imported before were imported again (--redo, or finishing a stopped one)
    resumed_redo: bool = False  # this run finished an `import --redo` that was stopped before it ended
    not_scanned: list[tuple[str, str]] = field(default_factory=list)  # (relative folder, reason): never read

    @property
    def skipped_reasons(self) -> Counter:
        """How many files were skipped for each kind of reason (the reason without its file-specific part)."""
        return Counter(skip_kind(reason) for _, reason in self.skipped)


def skip_kind(reason: str) -> str:
    """A skip reason without what names one file: "same bytes as cam/a.jpg, which is labeled with_mask" -> "same
    bytes as a file imported with another label"; "broken symbolic link (its target ...)" -> "broken symbolic link"."""
    if reason.startswith("same bytes as "):
        return "same bytes as a file imported with another label"
    return reason.split(" (")[0]


def parse_class_map(pairs: list[str]) -> dict[str, str]:
    """`--map FOLDER=LABEL` pairs on top of the defaults; LABEL is a class or `ignore`.

    Raises InputError for a malformed pair, an unknown label, or one folder given two different labels
    (the last would silently win and store a whole class under the wrong label).
    """
    mapping = dict(DEFAULT_CLASS_MAP)
    given: dict[str, str] = {}
    for pair in pairs:
        folder, sep, label = pair.partition("=")
        if not sep or not folder or not label:
            raise InputError(f"--map {pair!r}: expected FOLDER=LABEL, e.g. --map mask=with_mask")
        if label not in (*LABELS, IGNORE):
            raise InputError(f"--map {pair!r}: label must be one of {', '.join((*LABELS, IGNORE))}")
        if folder in given and given[folder] != label:
            raise InputError(f"--map {folder}={given[folder]} and --map {pair} contradict each other: "
                             f"give folder {folder!r} one label")
        given[folder] = label
        mapping[folder] = label
    return mapping


def guess_label(folder_name: str) -> str | None:
    """The class a folder name most likely means, for the hint of an unmapped folder (None: no guess).

    Case, separators and spaces are ignored: WITHOUT_MASK, Without-Mask, no_mask, unmasked -> without_mask;
    With_Mask, masked, mask -> with_mask; names that say "incorrect" get no guess.
    """
    norm = "".join(ch for ch in folder_name.lower() if ch.isalnum())
    if any(word in norm for word in ("incorrect", "improper", "wrong")):
        return None
    if any(word in norm for word in ("without", "nomask", "unmask", "nonmask", "notmask", "maskless",
                                     "nofacemask", "bare")):
        return "without_mask"
    if "mask" in norm:
        return "with_mask"
    return None


def check_source_name(name: str) -> None:
    """Raise InputError unless `name` follows the manifest's id rule (lrfp.names), which import shares."""
    problem = name_problem(name)
    if problem:
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise InputError(f"--source {shown!r} {problem}: {NAME_RULE}")


def _class_folders(cfg: ImportConfig, store_dirs: set[Path] = frozenset()) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """(class folder, label) pairs below cfg.folder, and (name, reason) of each top-level entry not scanned: an
    lrfp data directory (`store_dirs` or any folder holding lrfp.sqlite) or a broken symbolic link."""
    folder = cfg.folder
    check_input_folder(folder, "folder")
    not_scanned: list[tuple[str, str]] = []
    subdirs = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_symlink() and not p.exists():
            not_scanned.append((p.name, _broken_link(p)))
        elif p.is_dir():
            why = _store_folder(p, store_dirs)
            if why:
                not_scanned.append((p.name + "/", why))
            else:
                subdirs.append(p)
    if not subdirs:
        raise InputError(
            f"folder {folder} has no class subfolders: expected {'/, '.join(LABELS)}/ (or others named with --map)"
        )
    unmapped = [p.name for p in subdirs if p.name not in cfg.class_map]
    if unmapped:
        raise InputError(f"folder {folder}: subfolder(s) {', '.join(unmapped)} not mapped to a class; "
                         + "; ".join(_map_hint(name) for name in unmapped))
    pairs = [(p, cfg.class_map[p.name]) for p in subdirs if cfg.class_map[p.name] != IGNORE]
    if not pairs:
        raise InputError(f"folder {folder}: every subfolder is mapped to 'ignore'")
    return pairs, not_scanned


def _store_folder(path: Path, store_dirs: set[Path]) -> str | None:
    """Why the folder `path` is not scanned for images (its real path, links resolved, is an lrfp data directory or
    inside this store's data directory `store_dirs`), or None."""
    real = path.resolve()
    why = _in_store(real, store_dirs)
    if why:
        return why
    if (real / DB_NAME).is_file():
        return f"an lrfp data directory (it holds {DB_NAME}): never images to import"
    return None


def _in_store(real: Path, store_dirs: set[Path]) -> str | None:
    """Why the real (resolved) path `real` is never imported (it is this store's data directory or inside it: the
    store's own files, e.g. its crops reached through a symbolic link), or None."""
    for store_dir in store_dirs:
        if real == store_dir:
            return "the data directory of this store (-d): its own files, never images to import"
        if store_dir in real.parents:
            return "a link into the data directory of this store (-d): its own files, never images to import"
    return None


def _broken_link(path: Path) -> str:
    return f"broken symbolic link (its target {os.readlink(path)} does not exist)"


def _map_hint(name: str) -> str:
    guess = guess_label(name)
    other = {"with_mask": "without_mask", "without_mask": "with_mask"}.get(guess or "")
    if guess:
        return f"use --map {name}={guess} (or {other}, or ignore)"
    return f"use --map {name}=with_mask or --map {name}=without_mask (or ignore)"


def _list_files(
    folder: Path, class_dirs: list[tuple[Path, str]], store_dirs: set[Path] = frozenset(),
) -> tuple[list[tuple[str, Path, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """(relative path, absolute path, label) of every file below the class folders, sorted; (relative path,
    reason) of each entry skipped there (a broken symbolic link, a special file); (relative path, reason) of each
    folder not scanned (an lrfp data directory, a symbolic link back to a folder being scanned).

    Symbolic links to folders are followed (a class folder assembled from links is a common layout), each real
    folder once per class folder; hidden files and folders (dot names) are left out, as before.
    """
    files, skipped, not_scanned = [], [], []
    for class_dir, label in class_dirs:
        seen = {class_dir.resolve()}  # real folders scanned for this class: links can make loops of any length
        for root, dirs, names in os.walk(class_dir, followlinks=True):
            here = Path(root)
            keep = []
            for d in sorted(dirs):
                p = here / d
                if d.startswith("."):
                    continue
                rel = p.relative_to(folder).as_posix()
                real = p.resolve()
                why = _store_folder(p, store_dirs)
                if why is None and (real == here.resolve() or real in here.resolve().parents):
                    why = f"symbolic link to {real}, a folder it is inside (a loop): not followed"
                elif why is None and real in seen:
                    why = f"symbolic link to {real}, a folder scanned already: not followed"
                if why:
                    not_scanned.append((rel + "/", why))
                else:
                    seen.add(real)
                    keep.append(d)
            dirs[:] = keep
            for name in sorted(names):
                if name.startswith("."):
                    continue
                p = here / name
                rel = p.relative_to(folder).as_posix()
                if p.is_file():
                    why = _in_store(p.resolve(), store_dirs)  # a link to one of the store's own crops
                    if why:
                        skipped.append((rel, why))
                    else:
                        files.append((rel, p, label))
                elif p.is_symlink() and not p.exists():
                    skipped.append((rel, _broken_link(p)))
                else:
                    skipped.append((rel, "not a regular file"))
    return sorted(files, key=lambda f: f[0]), sorted(skipped), not_scanned


def read_groups(csv_path: Path, relpaths: list[str], source: str) -> dict[str, str]:
    """Map relative paths to group ids from a CSV with columns file,group_id (and optional class).

    A row names a file by its path below the import folder, by `class` + file name, or by bare
    file name (then every class folder's file of that name gets the group). Rows naming no file
    of the folder are an error: the CSV probably belongs to another folder.
    """
    check_input_file(csv_path, "groups CSV")
    try:
        text = read_csv_text(csv_path, "groups CSV")
    except ValueError as e:
        raise InputError(str(e)) from e
    records, errors = parse_csv(csv_path, text)
    if errors:
        raise InputError(f"groups CSV {csv_path} is not valid CSV:\n" + "\n".join(errors))
    if not records:
        raise InputError(f"{csv_path}: the groups CSV is empty; it needs a header line file,group_id and a row per file")
    columns = [c.strip() for c in records[0].fields] if records else []
    missing = [c for c in ("file", "group_id") if c not in columns]
    if missing:
        raise InputError(
            f"groups CSV {csv_path}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(columns) or 'no header'}; need file,group_id)"
        )
    dup = sorted({c for c in columns if c and columns.count(c) > 1})
    if dup:
        raise InputError(f"{csv_path}:{records[0].line}: column(s) named twice in the header: {', '.join(dup)}")
    long = [f"{csv_path}:{rec.line}: {len(rec.fields)} fields but the header has {len(columns)} "
            "(quote fields that contain commas)" for rec in records[1:] if len(rec.fields) > len(columns)]
    if long:
        raise InputError(f"groups CSV {csv_path} is not valid CSV:\n" + "\n".join(long))
    rows = [(dict(zip(columns, rec.fields)), rec.line) for rec in records[1:]]
    if not rows:  # every file would be its own group: the grouping the CSV was given for would silently be lost
        raise InputError(f"{csv_path}: the groups CSV has a header but no rows")
    by_name: dict[str, list[str]] = {}
    known = set(relpaths)
    for rel in relpaths:
        by_name.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    groups: dict[str, str] = {}
    given_at: dict[str, tuple[str, int]] = {}  # relative path -> (group id, line that gave it)
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
            if rel in given_at and given_at[rel][0] != gid:
                first_gid, first_line = given_at[rel]
                raise InputError(f"{csv_path}:{line}: {rel} is given group_id {gid!r}, but line {first_line} "
                                 f"gave it {first_gid!r}: a file belongs to one group")
            given_at.setdefault(rel, (gid, line))
            groups[rel] = f"{source}:{gid}"
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise InputError(f"groups CSV {csv_path}: {len(unknown)} row(s) name files not in the folder: {shown}")
    return groups


REDO_KEY = IMPORT_REDO_KEY
"""Store setting (+ source name) of an `lrfp import --redo` under way: the settings it redoes from and to, and each
file's crop before it, so that a rerun killed or stopped midway finishes it and counts it as one clean redo."""


def import_folder(
    store: Store, cfg: ImportConfig, progress: ProgressCallback | None = None
) -> ImportResult:
    """Import every image below the class folders (see `_import_folder`), holding the source's own lock: a second
    import of the same --source while one runs (two `--redo` with other settings would mix their crops) is refused
    with StoreBusyError (exit 1) naming the first; imports of other sources run beside it (run_lock)."""
    cfg.check()
    with run_lock.hold(store.root, f"{run_lock.IMPORT}.{cfg.source}", what=f"lrfp import --source {cfg.source}",
                       doing=f"folder {cfg.folder}"):
        return _import_folder(store, cfg, progress)


def _import_folder(
    store: Store, cfg: ImportConfig, progress: ProgressCallback | None = None
) -> ImportResult:
    """Import every image below the class folders. Idempotent: files seen before are not re-read.

    Each file is committed on its own (crop file, crop row, label, bookkeeping row in one step),
    so an interrupted import keeps what it stored and a rerun completes it. With cfg.redo, files seen before are
    imported again with this run's settings: a new crop gets the person's labels of the file's old crop
    (Store.copy_label_events), and old crops go at the end unless a saved split holds them. An interrupted redo is
    finished by a rerun with the same settings, --redo or not. The data directory, and any lrfp data directory,
    below the folder is never scanned. Raises UsageError for a bad `cfg`, InputError for a missing folder, a folder
    inside the data directory, unmapped class folders, a bad groups CSV, or settings changed without --redo.
    """
    cfg.check()
    folder = cfg.folder.expanduser().resolve()
    cfg = ImportConfig(**{**cfg.__dict__, "folder": folder})
    store_root = Path(store.root).resolve()
    if folder == store_root or store_root in folder.parents:
        raise InputError(f"folder {folder} is inside the data directory {store_root} (the store's own files): "
                         "give the folder of the images to import, or another data directory (-d)")
    class_dirs, not_scanned = _class_folders(cfg, {store_root})
    files, walk_skipped, deeper = _list_files(folder, class_dirs, {store_root})
    groups = read_groups(cfg.groups_csv, [rel for rel, _, _ in files], cfg.source) if cfg.groups_csv else {}

    existing = store.find_source(cfg.source)
    if existing is not None and (existing["kind"] != "folder" or existing["path"] != str(folder)):
        where = existing["path"] or existing["url"]
        raise InputError(
            f"source {cfg.source!r} already exists in the store for {where}; pick another --source name"
        )
    settings = import_settings(cfg, class_dirs)
    meta = json.loads(existing["meta"] or "{}") if existing is not None else {}
    done_before = store.imported_files(int(existing["id"])) if existing is not None else {}
    recorded = meta.get("import_settings")
    pending = _pending_redo(store, cfg.source)
    resuming = pending is not None and not changed_settings(pending["to"], settings)  # with --redo or without
    if pending is not None and not cfg.redo and not resuming:
        was = "; ".join(old for old, _ in changed_settings(settings, pending["to"]))
        now = "; ".join(new for _, new in changed_settings(settings, pending["to"]))
        raise InputError(
            f"source {cfg.source!r}: an `lrfp import --redo` with {now} was stopped before it finished, and this run "
            f"asks for {was}. Rerun with {now} (no --redo needed) to finish it, or with --redo to import the files "
            "again with this run's settings"
        )
    redo = cfg.redo or resuming
    changed = changed_settings(recorded, settings) if recorded is not None else []
    if done_before and not redo and changed:
        was = "; ".join(old for old, _ in changed)
        now = "; ".join(new for _, new in changed)
        raise InputError(
            f"source {cfg.source!r}: its {len(done_before)} stored files were imported with {was}, this run asks "
            f"for {now}. Rerun with --redo to import them again with the new settings (crops that come out "
            "identical keep their labels), or import under another --source name"
        )
    if not done_before or redo:
        meta["import_settings"] = settings
    elif recorded is not None:  # a new class folder since the last run: remember its mapping too
        meta["import_settings"] = {**recorded, "class_map": {**recorded.get("class_map", {}), **settings["class_map"]}}
    # Held (shared: imports of several folders may run at once) while the source is `importing`: one left so while
    # no import holds it was left by a killed run (run_lock, `lrfp stats`).
    with run_lock.hold(store.root, run_lock.IMPORT, shared=True):
        if redo and done_before:
            # Saved before anything is redone and kept until the end: each file's crop before the redo. A redo
            # started again over an unfinished one keeps the first one's crops: those are what the redo replaces.
            before = pending["crops"] if pending is not None else {rel: crop for rel, crop in done_before.items()}
            store.set_setting(REDO_KEY + cfg.source, json.dumps(
                {"from": pending["from"] if pending is not None else recorded, "to": settings, "crops": before}))
        else:
            before = {}
        source_id = store.upsert_source(
            cfg.source, "folder", path=str(folder), title=folder.name,
            license=cfg.license if cfg.license is not None else (existing["license"] if existing else None),
            status="importing", meta=meta,
        )
        annotator = cfg.annotator or f"import:{cfg.source}"
        result = ImportResult(source=cfg.source, files=len(files) + len(walk_skipped), redo=redo, resumed_redo=resuming,
                              skipped=list(walk_skipped), not_scanned=not_scanned + deeper)
        if done_before and not redo and cfg.license is not None and cfg.license != existing["license"]:
            result.license_recorded = cfg.license  # the files stored earlier keep their crops: pixels do not depend on it
        statuses = store.imported_file_statuses(source_id) if redo and done_before else {}
        for i, (rel, path, label) in enumerate(files):
            if redo and rel in done_before:
                status, reason, carried = _redo_one(
                    store, source_id, rel, path, label, groups.get(rel), cfg, annotator,
                    before.get(rel, done_before[rel]), done_before[rel], statuses.get(rel))
                result.labels_carried += carried
                if status == "unchanged":
                    result.unchanged += 1
                elif status == "imported":
                    result.imported += 1
                    result.per_label[label] += 1
                elif status == "duplicate":
                    result.duplicates += 1
                else:
                    result.skipped.append((rel, reason or status))
            elif rel in done_before:
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
        # Crops no imported file points at: the old crops of this redo, or ones an earlier redo kept for a split
        # that `lrfp split` has since been rerun without.
        result.replaced, result.kept_for_splits = store.remove_unreferenced_import_crops(source_id)
        store.delete_setting(REDO_KEY + cfg.source)
        store.set_source_status(source_id, "ok")
        return result


def _pending_redo(store: Store, source: str) -> dict[str, Any] | None:
    """The state an unfinished `lrfp import --redo` of `source` saved (REDO_KEY), or None."""
    text = store.get_setting(REDO_KEY + source)
    if text is None:
        return None
    return json.loads(text)


def import_settings(cfg: ImportConfig, class_dirs: list[tuple[Path, str]]) -> dict[str, object]:
    """The options that decide what a file becomes, recorded with the source so that a re-import with other
    ones is noticed: --max-side (pixels), each class folder's label (--map), the groups CSV (its sha256)."""
    return {
        "max_side": cfg.max_side,
        "class_map": {d.name: label for d, label in class_dirs},
        "groups_sha256": sha256_bytes(cfg.groups_csv.read_bytes()) if cfg.groups_csv else None,
    }


def changed_settings(old: dict[str, object], new: dict[str, object]) -> list[tuple[str, str]]:
    """(was, now) descriptions of each setting that differs; a class folder new in this run is no change."""
    out = []
    if old.get("max_side") != new.get("max_side"):
        out.append((_side(old.get("max_side")), _side(new.get("max_side"))))
    old_map, new_map = old.get("class_map") or {}, new.get("class_map") or {}
    for folder in sorted(set(old_map) & set(new_map)):
        if old_map[folder] != new_map[folder]:
            out.append((f"--map {folder}={old_map[folder]}", f"--map {folder}={new_map[folder]}"))
    if "groups_sha256" in old and old.get("groups_sha256") != new.get("groups_sha256"):
        out.append((_groups(old.get("groups_sha256")), _groups(new.get("groups_sha256"))))
    return out


def _side(side: object) -> str:
    return f"--max-side {side}" if side else "no --max-side (full size)"


def _groups(digest: object) -> str:
    return f"a groups CSV with sha256 {str(digest)[:12]}" if digest else "no groups CSV"


def _redo_one(
    store: Store, source_id: int, rel: str, path: Path, label: str, group: str | None,
    cfg: ImportConfig, annotator: str, old_crop: int | None, current_crop: int | None, recorded_status: str | None,
) -> tuple[str, str | None, int]:
    """Import one file again with this run's settings. An identical crop is kept (labels too); its file is
    written again when missing or damaged. `old_crop`: the file's crop before the redo began; `current_crop`: the
    one it points at now (another one when an interrupted redo already did this file, which then counts as it did).
    A new crop gets the person's label events of the file's current crop (every kind but the import's own), with
    who gave them and when. Returns (unchanged | imported | duplicate | skipped, reason, 1 if labels were carried).

    "Identical" means the same pixels: a crop stored by an older lrfp, whose PNG encoder wrote other bytes
    for them (PIL at zlib level 6 before lrfp.images.encode_png was the one encoder), is kept as it is.
    """
    from lrfp.crop_files import crop_file_problem

    try:
        data = path.read_bytes()
        image = downscale(load_rgb(data), cfg.max_side)
    except OSError as e:
        return "skipped", f"unreadable ({e.strerror})", 0
    except ImageDecodeError as e:
        return "skipped", str(e), 0
    png = encode_png(image)
    file_sha = sha256_bytes(data)
    origin = CropOrigin(original=rel, group_id=group, meta={"file_sha256": file_sha})
    same_pixels = old_crop is not None and _shows_pixels(store, old_crop, png, image)
    carried = 0
    with store.transaction():
        if same_pixels:
            crop_id, created = old_crop, False
        else:
            crop_id, created = store.add_crop(
                source_id, png, image.width, image.height, origin,
                label=label, annotator=annotator, label_kind="import", conn_in_transaction=True,
            )
        if crop_id == old_crop:
            status = "unchanged"
        elif created:
            status = "imported"
        elif crop_id == current_crop and recorded_status in ("imported", "duplicate"):
            status = recorded_status  # done by the interrupted redo this run finishes
        else:
            status = "duplicate"
        # From the crop the file points at now; when an interrupted redo already moved it, from the crop before
        # (nothing is copied twice): either way the count is the whole redo's.
        carry_from = current_crop if crop_id != current_crop else old_crop
        if carry_from is not None and carry_from != crop_id:
            carried = _carry_labels(store, carry_from, crop_id, label, annotator)
        if status == "unchanged" or (crop_id == current_crop and status == "imported"):
            _apply_new_folder_settings(store, crop_id, label, group, annotator)
        store.record_imported_file(source_id, rel, file_sha, crop_id, "duplicate" if status == "duplicate" else "imported",
                                   "same pixels as another file" if status == "duplicate" else None)
    if not created:
        row = store.crop(crop_id)
        if crop_file_problem(store.crop_file(row)) is not None:
            store.restore_crop_file(row, png)
    return status, None, carried if status == "imported" else 0  # a duplicate's crop is counted with its file's


def _carry_labels(store: Store, from_crop: int, to_crop: int, label: str, annotator: str) -> int:
    """Give `to_crop` (a file's new crop) the label events people gave `from_crop` (its old one); inside a
    transaction. When the old crop's current label was still the import's own, the new crop's stays so too.
    Returns 1 when a person's events were carried, else 0."""
    try:
        store.crop(from_crop)
    except NotFoundError:
        return 0
    copied, present = store.copy_label_events(from_crop, to_crop, except_kind="import")
    if not copied:
        return int(present > 0)
    old_current = store.current_label_event(from_crop)
    new_current = store.current_label_event(to_crop)
    if old_current is not None and old_current["annotator"] == annotator and (
            new_current is None or new_current["annotator"] != annotator):
        store.append_label(to_crop, label, annotator, "import")
    return 1


def _shows_pixels(store: Store, crop_id: int, png: bytes, image: Any) -> bool:
    """Whether the stored crop `crop_id` shows exactly `image` (RGB) though its bytes differ from `png`:
    a PNG written by an older encoder. False when its file is missing or damaged (it is then rewritten)."""
    from lrfp.crop_files import open_crop

    try:
        row = store.crop(crop_id)
    except NotFoundError:
        return False
    if row["sha256"] == sha256_bytes(png):
        return False  # the same bytes: add_crop finds it by its sha256
    try:
        old = open_crop(store.root, row)
    except CropFileError:
        return False
    return old.size == image.size and old.tobytes() == image.convert("RGB").tobytes()


def _apply_new_folder_settings(store: Store, crop_id: int, label: str, group: str | None, annotator: str) -> None:
    """--redo on a pixel-identical crop: its label follows a changed --map only while it is still the
    import's own label (a person's label stays), and its group follows the groups CSV. Inside a transaction."""
    current = store.current_label_event(crop_id)
    if current is not None and current["annotator"] == annotator and current["label"] != label:
        store.append_label(crop_id, label, annotator, "import")
    store.set_crop_group(crop_id, group)


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
