"""The dataset store: face crops as PNG files on disk plus an SQLite index, shared by every command.

Layout of a data directory::

    lrfp.sqlite            the index (WAL mode, foreign keys on, schema version in PRAGMA user_version)
    crops/ab/abcdef...png  crops, content-addressed by the sha256 of the PNG bytes
    frames/...             optional context frames written by `lrfp fetch`
    tmp/                   files being written (renamed into crops/ or frames/ when complete)

Crash safety: a crop is written to a temporary name in tmp/, fsynced, renamed into place, and its row is
committed right after. A kill before the rename leaves only a `*.tmp` file, removed on the next open
(which lists tmp/ only, so opening costs the same with a million crops as with none); a kill between
rename and commit leaves a file without a row, which the next write of the same content simply reuses.
There is never a row without its file. `add_frames_and_crops` does the same for a batch: every file
written and renamed, one sync of the filesystem, then one commit.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import hashlib
import json
import logging
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from lrfp.errors import DataDirError, DiskFullError, NoSplitError, NoStoreError, NotFoundError, SchemaError
from lrfp.face_size import face_px  # noqa: F401 - re-exported: callers import the rule from the store
from lrfp.paths import probe_writable

log = logging.getLogger(__name__)

DB_NAME = "lrfp.sqlite"
CROPS_DIR = "crops"
FRAMES_DIR = "frames"
IMPORT_REDO_KEY = "import.redo_of:"
"""`settings` key (+ source name) of an `lrfp import --redo` under way or stopped (lrfp.import_folder)."""
TMP_DIR = "tmp"  # on the store's filesystem, so a rename out of it is atomic
BUSY_TIMEOUT_MS = 60_000
IN_LIST_CHUNK = 500
"""Most values bound in one `IN (...)` list: SQLite before 3.32 allows 999 parameters per statement,
and a query may bind a few more than its list."""

# Each entry migrates the schema from version i to i+1. Never edit a released entry: append.
MIGRATIONS: list[str] = [
    # v1: the first schema.
    """
    CREATE TABLE sources (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL CHECK (kind IN ('folder', 'video')),
        url         TEXT,
        path        TEXT,
        title       TEXT,
        license     TEXT,
        width       INTEGER,
        height      INTEGER,
        fps         REAL,
        duration_s  REAL,
        status      TEXT NOT NULL DEFAULT 'pending',
        error       TEXT,
        meta        TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE TABLE frames (
        id          INTEGER PRIMARY KEY,
        source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        frame_index INTEGER NOT NULL,
        time_s      REAL,
        width       INTEGER,
        height      INTEGER,
        path        TEXT,
        UNIQUE (source_id, frame_index)
    );
    CREATE TABLE crops (
        id           INTEGER PRIMARY KEY,
        source_id    INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        path         TEXT NOT NULL UNIQUE,
        sha256       TEXT NOT NULL UNIQUE,
        width        INTEGER NOT NULL,
        height       INTEGER NOT NULL,
        original     TEXT,
        frame_id     INTEGER REFERENCES frames(id) ON DELETE SET NULL,
        frame_index  INTEGER,
        time_s       REAL,
        box_x        INTEGER,
        box_y        INTEGER,
        box_w        INTEGER,
        box_h        INTEGER,
        score        REAL,
        detector     TEXT,
        model_sha256 TEXT,
        track_id     TEXT,
        group_id     TEXT,
        meta         TEXT NOT NULL DEFAULT '{}',
        created_at   TEXT NOT NULL
    );
    CREATE INDEX crops_source ON crops(source_id, time_s);
    CREATE INDEX crops_group ON crops(group_id);
    CREATE INDEX crops_track ON crops(track_id);
    -- One row per file an import has seen, so that a re-import adds nothing and duplicates are counted.
    CREATE TABLE imported_files (
        source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        relpath     TEXT NOT NULL,
        file_sha256 TEXT,
        crop_id     INTEGER REFERENCES crops(id) ON DELETE CASCADE,
        status      TEXT NOT NULL,
        reason      TEXT,
        PRIMARY KEY (source_id, relpath)
    );
    CREATE INDEX imported_files_sha ON imported_files(file_sha256);
    -- Append-only label history. label NULL means "cleared" (an undo back to nothing).
    -- kind: 'label' (a labeler), 'import' (class folder of an import), 'review' (blind second look).
    CREATE TABLE labels (
        id         INTEGER PRIMARY KEY,
        crop_id    INTEGER NOT NULL REFERENCES crops(id) ON DELETE CASCADE,
        label      TEXT,
        annotator  TEXT NOT NULL,
        kind       TEXT NOT NULL DEFAULT 'label' CHECK (kind IN ('label', 'import', 'review')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX labels_crop ON labels(crop_id, id);
    -- The current label of a crop: its latest non-review event.
    CREATE VIEW current_labels AS
        SELECT l.crop_id, l.label, l.annotator, l.created_at
        FROM labels l
        WHERE l.id = (SELECT MAX(id) FROM labels WHERE crop_id = l.crop_id AND kind != 'review');
    CREATE TABLE splits (
        name       TEXT PRIMARY KEY,
        seed       INTEGER,
        params     TEXT NOT NULL DEFAULT '{}',
        report     TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE split_assignments (
        split_name TEXT NOT NULL REFERENCES splits(name) ON DELETE CASCADE,
        crop_id    INTEGER NOT NULL REFERENCES crops(id) ON DELETE CASCADE,
        subset     TEXT NOT NULL CHECK (subset IN ('train', 'validation', 'test')),
        PRIMARY KEY (split_name, crop_id)
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
    """,
    # v2: model predictions (`lrfp predict`), kept apart from the label history: a prediction is never a label.
    """
    CREATE TABLE predictions (
        id                INTEGER PRIMARY KEY,
        crop_id           INTEGER NOT NULL REFERENCES crops(id) ON DELETE CASCADE,
        checkpoint_sha256 TEXT NOT NULL,
        config            TEXT NOT NULL,
        probs             TEXT NOT NULL,
        predicted         TEXT NOT NULL,
        confidence        REAL NOT NULL,
        created_at        TEXT NOT NULL
    );
    CREATE INDEX predictions_crop ON predictions(crop_id, id);
    """,
    # v3: model suggestions confirmed in `lrfp label`, and `lrfp review-labels` rankings.
    """
    -- 1 when the label was a model's suggestion that a person accepted (accept key, confirmed grid page):
    -- the dataset card counts these, and agreement statistics leave them out.
    ALTER TABLE labels ADD COLUMN suggested INTEGER NOT NULL DEFAULT 0;
    DROP VIEW current_labels;
    CREATE VIEW current_labels AS
        SELECT l.crop_id, l.label, l.annotator, l.created_at, l.suggested
        FROM labels l
        WHERE l.id = (SELECT MAX(id) FROM labels WHERE crop_id = l.crop_id AND kind != 'review');
    CREATE TABLE label_issue_runs (
        run_id     TEXT PRIMARY KEY,
        params     TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    -- One row per labeled crop of a run: its cleanlab label quality (low = likely wrong) and rank.
    CREATE TABLE label_issues (
        run_id          TEXT NOT NULL REFERENCES label_issue_runs(run_id) ON DELETE CASCADE,
        crop_id         INTEGER NOT NULL REFERENCES crops(id) ON DELETE CASCADE,
        rank            INTEGER NOT NULL,
        quality         REAL NOT NULL,
        given_label     TEXT NOT NULL,
        suggested_label TEXT NOT NULL,
        p_suggested     REAL NOT NULL,
        is_issue        INTEGER NOT NULL,
        PRIMARY KEY (run_id, crop_id)
    );
    CREATE INDEX label_issues_rank ON label_issues(run_id, rank);
    """,
]


def latest_schema_version() -> int:
    """The schema version this lrfp writes: one per migration."""
    return len(MIGRATIONS)


def now() -> str:
    """UTC timestamp with microseconds, ISO 8601: sorts as text."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class CropOrigin:
    """Where a crop came from. Every field is optional: an imported photo has no frame or box."""

    original: str | None = None
    frame_id: int | None = None
    frame_index: int | None = None
    time_s: float | None = None
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in source-frame pixels
    score: float | None = None
    detector: str | None = None
    model_sha256: str | None = None
    track_id: str | None = None
    group_id: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class NewPrediction:
    """A model's class probabilities for one stored crop (`lrfp predict`). Never a label.

    probs maps each of the checkpoint's classes to its probability, in the checkpoint's class order
    (they sum to 1). The predicted class is the most probable one (the first of equals, in that order).
    """

    crop_id: int
    checkpoint_sha256: str
    config: str
    probs: dict[str, float]

    @property
    def predicted(self) -> str:
        return max(self.probs, key=self.probs.__getitem__)

    @property
    def confidence(self) -> float:
        """The predicted class's probability, 0..1."""
        return float(max(self.probs.values()))


@dataclass(frozen=True)
class StoredPrediction:
    """A prediction as stored: NewPrediction's fields, the predicted class, its probability, and when (UTC)."""

    crop_id: int
    checkpoint_sha256: str
    config: str
    probs: dict[str, float]
    predicted: str
    confidence: float
    created_at: str


@dataclass(frozen=True)
class NewFrame:
    """A sampled video frame to record, with its context image (JPEG bytes) if any."""

    frame_index: int
    time_s: float | None
    width: int
    height: int
    image: bytes | None = None
    ext: str = "jpg"


@dataclass(frozen=True)
class NewCrop:
    """A crop to store: PNG bytes, size, and origin (its frame named by origin.frame_index)."""

    png: bytes
    width: int
    height: int
    origin: CropOrigin


def _crop_rel(digest: str) -> str:
    """A crop's path in the store: content-addressed by the sha256 of its PNG bytes."""
    return f"{CROPS_DIR}/{digest[:2]}/{digest}.png"


def _same_content(path: str | Path, data: bytes) -> bool:
    """Whether `path` already holds exactly `data` (a content-addressed file left by an earlier run)."""
    try:
        if os.stat(path).st_size != len(data):
            return False
        with open(path, "rb") as fh:
            return fh.read() == data
    except OSError:
        return False


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """syncfs(2) the filesystem holding `path` (Linux): one call makes every file written so far durable.
    Returns False where it is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed: {os.strerror(err)}", str(path))
        return True
    finally:
        os.close(fd)


class Store:
    """An open data directory. Use as a context manager, or call `close()`.

    One connection per Store and per process; several processes may open the same data directory
    at once (SQLite WAL with a busy timeout serializes their writes).
    """

    def __init__(self, data_dir: Path | str, *, create: bool = True, read_only: bool = False) -> None:
        """Open (create=True: create if needed) the store in `data_dir`.

        read_only=True opens the SQLite file in SQLite's read-only mode (URI `mode=ro`), so that
        commands that only read (stats, publish, bench) work on a read-only mount or a copy without
        write permission; nothing is written, not even the stale-tmp cleanup. On a folder that cannot
        be written, the file is opened `immutable` (no lock or -shm file is needed there).
        Raises NoStoreError (exit 2: no such folder, a file, or no store in it), DataDirError (a write command
        on a read-only folder, saying so; a store that cannot be opened),
        SchemaError (not an lrfp store, or from a newer lrfp).
        """
        self.root = Path(data_dir).expanduser().resolve()
        self._root_str = str(self.root)
        self._tmp_str = os.path.join(self._root_str, TMP_DIR)
        self._folders: set[str] = set()  # folders this Store has made or found (files are written into them)
        self.db_path = self.root / DB_NAME
        self.read_only = read_only
        fix = "point -d (or LRFP_DATA_DIR) at a store's folder, or make one with `lrfp import` or `lrfp fetch`"
        if not self.root.exists():
            if not create:
                raise NoStoreError(f"no lrfp data directory at {self.root}: {fix}")
            try:
                self.root.mkdir(parents=True)
            except NotADirectoryError as e:  # a part of the path is a file: the -d given cannot be a folder
                raise NoStoreError(f"cannot create data directory {self.root}: {e.strerror} (a part of the path is "
                                   "a file): give -d a folder's path") from e
            except OSError as e:
                raise DataDirError(f"cannot create data directory {self.root}: {e.strerror}") from e
        if not self.root.is_dir():
            raise NoStoreError(f"data directory {self.root} is not a directory: {fix}")
        if not create and not self.db_path.exists():
            try:
                what = "an empty folder" if not any(self.root.iterdir()) else f"a folder without {DB_NAME}"
            except OSError:
                what = f"no {DB_NAME} there"
            raise NoStoreError(f"no lrfp store in {self.root} ({what}): {fix}")
        writable_reason = None if read_only else _check_writable(self.root)
        if writable_reason is not None:
            raise DataDirError(
                f"data directory {self.root} is not writable ({writable_reason}): this command writes to the store. "
                "Commands that only read it (lrfp stats, lrfp publish, lrfp bench) still work; to change it, "
                "copy the folder to a writable place or remount it read-write"
            )
        if read_only and _older_schema(self.db_path) and _check_writable(self.root) is None:
            # An older store on a writable folder is upgraded as any command opening it would (schema migrations
            # only add), so that a read-only command still works after an upgrade of lrfp.
            Store(self.root, create=False).close()
        try:
            self._connect(read_only)
        except sqlite3.DatabaseError as e:
            if not _no_space_left(self.root):
                raise SchemaError(f"{self.db_path} is not a usable lrfp store: {e}") from e
            # SQLite says "disk I/O error" where it cannot make its -shm file on a full disk. A command that only
            # reads then reads the file as it is (immutable: no -shm needed), unless changes wait in its -wal.
            if not read_only or _wal_has_changes(self.db_path):
                raise DiskFullError(self.root) from e
            try:
                self._connect(read_only, immutable=True)
            except sqlite3.DatabaseError as again:
                raise DiskFullError(self.root) from again
        if not read_only:
            self._remove_stale_tmp()

    def _connect(self, read_only: bool, immutable: bool = False) -> None:
        """Open self.conn and check (read_only) or migrate the schema. Raises DataDirError (cannot open),
        sqlite3.DatabaseError (not an SQLite file, I/O), SchemaError (see __init__)."""
        try:
            if read_only:
                self.conn = self._connect_read_only(immutable)
            else:
                self.conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.OperationalError as e:
            raise DataDirError(f"cannot open {self.db_path}: {e}") from e
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if read_only:
                self._check_schema_read_only()
            else:
                self.conn.execute("PRAGMA foreign_keys = ON")
                self._migrate()
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            self.conn.close()
            raise

    def _connect_read_only(self, immutable: bool = False) -> sqlite3.Connection:
        uri = f"{self.db_path.as_uri()}?mode=ro"
        if immutable:
            return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        if _check_writable(self.root) is not None:
            if _wal_has_changes(self.db_path):
                raise DataDirError(
                    f"{self.db_path} has unsaved changes in {DB_NAME}-wal and its folder is read-only: open the store "
                    "once where it can be written (any lrfp command), then read it here"
                )
            uri += "&immutable=1"  # a read-only folder: no other process can change it, and no -shm can be made
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)

    def _schema_versions(self) -> tuple[int, int]:
        """(this store's schema version, the latest this lrfp knows). Raises SchemaError for a store made by a
        newer lrfp, before anything is written."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        latest = latest_schema_version()
        if version > latest:
            raise SchemaError(
                f"{self.db_path} has schema version {version}, but this lrfp knows up to {latest}: "
                "upgrade lrfp (the store was left untouched)"
            )
        return version, latest

    def _check_schema_read_only(self) -> None:
        version, latest = self._schema_versions()
        if version < latest:
            raise DataDirError(
                f"{self.db_path} has schema version {version} and needs an upgrade to {latest}, which writes to it: "
                "run any lrfp command that writes (e.g. `lrfp split`) on a writable copy first"
            )
        if version == 0 and not self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'crops'").fetchone():
            raise SchemaError(f"{self.db_path} is not a usable lrfp store: no lrfp tables")

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (no deadlock between processes)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        version, latest = self._schema_versions()
        if version == latest:
            return
        with self.transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, latest + 1):
                log.info("migrating store %s to schema v%d", self.db_path, target)
                for statement in _split_sql(MIGRATIONS[target - 1]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {target}")

    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def _remove_stale_tmp(self) -> None:
        # Only tmp/ is listed (not every crop folder), so this stays cheap however large the store grows.
        for tmp in (self.root / TMP_DIR).glob("*.tmp"):
            if _pid_alive(tmp):
                continue  # another process is writing it right now
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- settings --------------------------------------------------------------------------------

    def import_redos_under_way(self) -> list[str]:
        """The sources an `lrfp import --redo` is redoing now, or left unfinished (their IMPORT_REDO_KEY setting):
        the store holds both old and new crops of their files until it ends."""
        rows = self.conn.execute("SELECT key FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key",
                                 (len(IMPORT_REDO_KEY), IMPORT_REDO_KEY)).fetchall()
        return [r[0][len(IMPORT_REDO_KEY):] for r in rows]

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        """Store one setting (a fetch --redo in progress records its state here)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_setting(self, key: str) -> None:
        """Remove one setting (nothing happens if it is not there)."""
        with self.transaction():
            self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))

    # -- sources ---------------------------------------------------------------------------------

    def upsert_source(self, name: str, kind: str, **fields: Any) -> int:
        """Create the source `name`, or update the given fields of it. Returns its id."""
        if "meta" in fields and not isinstance(fields["meta"], str):
            fields["meta"] = json.dumps(fields["meta"], sort_keys=True)
        allowed = {"url", "path", "title", "license", "width", "height", "fps", "duration_s", "status", "error", "meta"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown source fields: {sorted(unknown)}")
        ts = now()
        with self.transaction():
            row = self.conn.execute("SELECT id, kind FROM sources WHERE name = ?", (name,)).fetchone()
            if row is None:
                cols = ["name", "kind", "created_at", "updated_at", *fields]
                vals = [name, kind, ts, ts, *fields.values()]
                cur = self.conn.execute(
                    f"INSERT INTO sources({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", vals
                )
                return int(cur.lastrowid)
            if fields:
                sets = ", ".join(f"{k} = ?" for k in fields)
                self.conn.execute(
                    f"UPDATE sources SET {sets}, updated_at = ? WHERE id = ?", [*fields.values(), ts, row["id"]]
                )
            return int(row["id"])

    def set_source_status(self, source_id: int, status: str, error: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE sources SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, error, now(), source_id),
            )

    def replace_status(self, names: Iterable[str], old: str, status: str, error: str | None, *,
                       old_error: str | None = None) -> list[str]:
        """Give every source of `names` whose status is `old` (and, with `old_error`, whose error begins with it)
        the status `status` and `error`, in one transaction (one write: what a nearly full disk can still take);
        returns the names changed, in order."""
        names = list(names)
        with self.transaction():
            found = [name for name in names if (row := self.conn.execute(
                "SELECT status, error FROM sources WHERE name = ?", (name,)).fetchone()) is not None
                and row["status"] == old and (old_error is None or (row["error"] or "").startswith(old_error))]
            self.conn.executemany("UPDATE sources SET status = ?, error = ?, updated_at = ? WHERE name = ?",
                                  [(status, error, now(), name) for name in found])
        return found

    def source(self, name: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no source named {name!r} in the store")
        return row

    def find_source(self, name: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()

    def sources(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM sources ORDER BY id").fetchall()

    # -- crops -----------------------------------------------------------------------------------

    def crop_file(self, crop: sqlite3.Row | str) -> Path:
        """Absolute path of a crop's PNG (from its row or its stored relative path)."""
        rel = crop if isinstance(crop, str) else crop["path"]
        return self.root / rel

    def _write_file_atomically(self, rel: str, data: bytes, *, sync: bool = True) -> Path | None:
        """Write `data` at `rel` through a temporary name. Returns the path written (None: already there).

        sync=False leaves syncing to the caller (`_sync_files`), which must happen before any commit of a
        row that names the file. Plain `os` calls on strings: the fetch writer stores hundreds of small files
        a second, and pathlib and buffered files cost more than the write itself there.
        """
        final = os.path.join(self._root_str, rel)
        folder = os.path.dirname(final)
        self._ensure_folder(folder)
        if _same_content(final, data):
            return None  # left by an earlier run that was killed before its commit
        # tmp/<rel with / as _>.<pid>.tmp: unique per file and process (see _pid_alive)
        tmp = os.path.join(self._tmp_str, f"{rel.replace('/', '_')}.{os.getpid()}.tmp")
        self._ensure_folder(self._tmp_str)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # tmp/ was removed since it was made
            self._ensure_folder(self._tmp_str, again=True)
            fd = os.open(tmp, flags, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # its folder was removed since it was made (a user's cleanup)
            self._ensure_folder(folder, again=True)
            os.replace(tmp, final)
        return Path(final)

    def _ensure_folder(self, folder: str, again: bool = False) -> None:
        """Make `folder` once per Store (remembered: no system call on later writes); again=True rechecks."""
        if again or folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)

    def _sync_files(self, paths: Sequence[Path]) -> None:
        """Make the written files (data and renames) durable: one syncfs() of the store's filesystem on
        Linux, else an fsync of each file and of each folder they were renamed into."""
        if not paths:
            return
        if _syncfs(self.root):
            return
        for p in paths:
            _fsync_path(p)
        for d in {p.parent for p in paths}:
            with contextlib.suppress(OSError):  # folders cannot be opened for fsync on every platform
                _fsync_path(d)

    def add_crop(
        self,
        source_id: int,
        png: bytes,
        width: int,
        height: int,
        origin: CropOrigin = CropOrigin(),
        *,
        label: str | None = None,
        annotator: str | None = None,
        label_kind: str = "import",
        conn_in_transaction: bool = False,
    ) -> tuple[int, bool]:
        """Store one crop (PNG bytes) with its origin, and optionally a first label.

        Returns (crop_id, created). Same PNG bytes as a stored crop: nothing is written and the
        existing id is returned with created=False.
        """
        digest = sha256_bytes(png)
        rel = _crop_rel(digest)
        existing = self.conn.execute("SELECT id FROM crops WHERE sha256 = ?", (digest,)).fetchone()
        if existing is not None:
            return int(existing[0]), False
        self._write_file_atomically(rel, png)
        ctx = contextlib.nullcontext() if conn_in_transaction else self.transaction()
        with ctx:
            existing = self.conn.execute("SELECT id FROM crops WHERE sha256 = ?", (digest,)).fetchone()
            if existing is not None:  # another process stored it meanwhile
                return int(existing[0]), False
            crop_id = self._insert_crop_row(source_id, rel, digest, width, height, origin, origin.frame_id)
            if label is not None:
                self.conn.execute(
                    "INSERT INTO labels(crop_id, label, annotator, kind, created_at) VALUES (?, ?, ?, ?, ?)",
                    (crop_id, label, annotator or "unknown", label_kind, now()),
                )
        return crop_id, True

    def restore_crop_file(self, crop: sqlite3.Row, png: bytes) -> None:
        """Write a crop's PNG again (it was deleted or damaged under the store). `png` must hash to its sha256."""
        if sha256_bytes(png) != crop["sha256"]:
            raise ValueError(f"crop {crop['id']}: these bytes are not its PNG")
        self._write_file_atomically(crop["path"], png)

    def delete_crops(self, crop_ids: Sequence[int]) -> None:
        """Remove crops: their rows (labels and split assignments go with them) and then their files."""
        if not crop_ids:
            return
        paths = []
        with self.transaction():
            for i in range(0, len(crop_ids), IN_LIST_CHUNK):
                chunk = list(crop_ids[i:i + IN_LIST_CHUNK])
                marks = ",".join("?" * len(chunk))
                paths += [r[0] for r in self.conn.execute(f"SELECT path FROM crops WHERE id IN ({marks})", chunk)]
                self.conn.execute(f"DELETE FROM crops WHERE id IN ({marks})", chunk)
        for rel in paths:
            with contextlib.suppress(FileNotFoundError):
                (self.root / rel).unlink()

    def prune_source_crops(self, source_id: int, keep: set[int]) -> tuple[int, int]:
        """Remove the crops of a source that are not in `keep` (what its latest complete run produced), unless
        a person labeled or reviewed them or a split holds them; frames no crop uses any more go too.

        One transaction holds the write lock from the check to the delete (unlike `delete_crops`), so a label
        given meanwhile by a labeler in another process is never deleted with its crop. Rows go before files
        (a file without a row is harmless, never the reverse).
        Returns (crops removed, crops kept because they are labeled or in a split).
        """
        with self.transaction():
            rows = self.conn.execute(
                """SELECT c.id, c.path,
                          EXISTS (SELECT 1 FROM labels l WHERE l.crop_id = c.id)
                          OR EXISTS (SELECT 1 FROM split_assignments a WHERE a.crop_id = c.id) AS held
                   FROM crops c WHERE c.source_id = ?""", (source_id,)).fetchall()
            obsolete = [r for r in rows if r["id"] not in keep]
            gone = [r for r in obsolete if not r["held"]]
            for i in range(0, len(gone), IN_LIST_CHUNK):
                chunk = [r["id"] for r in gone[i : i + IN_LIST_CHUNK]]
                self.conn.execute(f"DELETE FROM crops WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            frames = self.conn.execute(
                """SELECT id, path FROM frames f WHERE f.source_id = ?
                   AND NOT EXISTS (SELECT 1 FROM crops c WHERE c.frame_id = f.id)""", (source_id,)).fetchall()
            self.conn.execute(
                """DELETE FROM frames WHERE source_id = ?
                   AND NOT EXISTS (SELECT 1 FROM crops c WHERE c.frame_id = frames.id)""", (source_id,))
        for rel in [r["path"] for r in gone] + [f["path"] for f in frames if f["path"]]:
            with contextlib.suppress(OSError):
                (self.root / rel).unlink()
        return len(gone), len(obsolete) - len(gone)

    def crop_owners(self, crop_ids: Iterable[int]) -> dict[str, int]:
        """{source name: how many of `crop_ids` it owns} (a crop belongs to the source that stored it first)."""
        owners: Counter[str] = Counter()
        ids = sorted(set(crop_ids))
        for i in range(0, len(ids), IN_LIST_CHUNK):
            chunk = ids[i:i + IN_LIST_CHUNK]
            owners.update(dict(self.conn.execute(
                f"""SELECT s.name, COUNT(*) FROM crops c JOIN sources s ON s.id = c.source_id
                    WHERE c.id IN ({','.join('?' * len(chunk))}) GROUP BY s.name""", chunk).fetchall()))
        return dict(owners)

    def crop(self, crop_id: int) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM crops WHERE id = ?", (crop_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no crop with id {crop_id}")
        return row

    def count_crops(self, source_id: int | None = None) -> int:
        """How many crops the store holds (with `source_id`: how many that source owns)."""
        if source_id is None:
            return self.conn.execute("SELECT COUNT(*) FROM crops").fetchone()[0]
        return self.conn.execute("SELECT COUNT(*) FROM crops WHERE source_id = ?", (source_id,)).fetchone()[0]

    def add_frame(
        self, source_id: int, frame_index: int, time_s: float | None, width: int, height: int,
        image: bytes | None = None, ext: str = "jpg",
    ) -> int:
        """Record a sampled frame (and its image, if given, for context when labeling). Idempotent."""
        rel = None
        if image is not None:
            rel = f"{FRAMES_DIR}/{source_id}/{frame_index:09d}.{ext}"
            self._write_file_atomically(rel, image)
        with self.transaction():
            self._upsert_frame_row(source_id, frame_index, time_s, width, height, rel)
            return int(
                self.conn.execute(
                    "SELECT id FROM frames WHERE source_id = ? AND frame_index = ?", (source_id, frame_index)
                ).fetchone()[0]
            )

    def add_frames_and_crops(
        self, source_id: int, frames: Sequence[NewFrame], crops: Sequence[NewCrop],
    ) -> list[tuple[int, bool]]:
        """Store a batch of frames and crops of one source: what `add_frame` and `add_crop` do one by one,
        with one filesystem sync and one transaction for the whole batch (the fetch writer's path).

        Each crop's origin names its frame by `frame_index` (its `frame_id` is filled in here). Files are
        written and renamed, synced once, and only then are the rows committed: never a row without its file.
        Returns (crop_id, created) per crop, in order; a crop whose PNG is already stored is not stored again.
        """
        written: list[Path] = []
        frame_paths: dict[int, str | None] = {}
        for f in frames:
            rel = None
            if f.image is not None:
                rel = f"{FRAMES_DIR}/{source_id}/{f.frame_index:09d}.{f.ext}"
                if (p := self._write_file_atomically(rel, f.image, sync=False)) is not None:
                    written.append(p)
            frame_paths[f.frame_index] = rel
        digests = [sha256_bytes(c.png) for c in crops]
        known = self._crop_ids_by_sha256(digests)
        for c, digest in zip(crops, digests):
            if digest not in known:
                p = self._write_file_atomically(_crop_rel(digest), c.png, sync=False)
                if p is not None:
                    written.append(p)
        self._sync_files(written)
        out: list[tuple[int, bool]] = []
        with self.transaction():
            frame_ids: dict[int, int] = {}
            for f in frames:
                self._upsert_frame_row(source_id, f.frame_index, f.time_s, f.width, f.height, frame_paths[f.frame_index])
            wanted = sorted({c.origin.frame_index for c in crops if c.origin.frame_id is None and c.origin.frame_index is not None})
            if wanted:  # this batch's frames and those stored by earlier batches
                frame_ids = dict(self.conn.execute(
                    f"SELECT frame_index, id FROM frames WHERE source_id = ? AND frame_index IN ({','.join('?' * len(wanted))})",
                    (source_id, *wanted),
                ).fetchall())
            known = self._crop_ids_by_sha256(digests)  # again, under the write lock: other processes may have stored some
            for c, digest in zip(crops, digests):
                if digest in known:
                    out.append((known[digest], False))
                    continue
                o = c.origin
                frame_id = o.frame_id if o.frame_id is not None else frame_ids.get(o.frame_index)
                known[digest] = self._insert_crop_row(source_id, _crop_rel(digest), digest, c.width, c.height, o, frame_id)
                out.append((known[digest], True))
        return out

    def _insert_crop_row(
        self, source_id: int, rel: str, digest: str, width: int, height: int, o: CropOrigin, frame_id: int | None,
    ) -> int:
        box = o.box or (None, None, None, None)
        cur = self.conn.execute(
            """INSERT INTO crops(source_id, path, sha256, width, height, original, frame_id, frame_index,
                   time_s, box_x, box_y, box_w, box_h, score, detector, model_sha256, track_id, group_id,
                   meta, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                source_id, rel, digest, width, height, o.original, frame_id, o.frame_index, o.time_s, *box, o.score,
                o.detector, o.model_sha256, o.track_id, o.group_id, json.dumps(o.meta or {}, sort_keys=True), now(),
            ),
        )
        return int(cur.lastrowid)

    def _upsert_frame_row(
        self, source_id: int, frame_index: int, time_s: float | None, width: int, height: int, rel: str | None,
    ) -> None:
        self.conn.execute(
            """INSERT INTO frames(source_id, frame_index, time_s, width, height, path) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(source_id, frame_index) DO UPDATE SET path = COALESCE(excluded.path, frames.path)""",
            (source_id, frame_index, time_s, width, height, rel),
        )

    def _crop_ids_by_sha256(self, digests: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(digests))
        for i in range(0, len(unique), IN_LIST_CHUNK):
            chunk = unique[i : i + IN_LIST_CHUNK]
            found.update(self.conn.execute(
                f"SELECT sha256, id FROM crops WHERE sha256 IN ({','.join('?' * len(chunk))})", chunk).fetchall())
        return found

    # -- labels ----------------------------------------------------------------------------------

    def add_label(self, crop_id: int, label: str | None, annotator: str, kind: str = "label",
                  *, suggested: bool = False) -> int:
        """Append one label event (committed before returning). label=None clears the label.

        suggested=True records that the label is a model's suggestion the annotator accepted.
        """
        with self.transaction():
            return self.append_label(crop_id, label, annotator, kind, suggested=suggested)

    def current_label_event(self, crop_id: int) -> sqlite3.Row | None:
        """The event that set the crop's current label (label, annotator, created_at, suggested), or None."""
        return self.conn.execute(
            "SELECT label, annotator, created_at, suggested FROM current_labels WHERE crop_id = ?", (crop_id,)).fetchone()

    def current_labels(self) -> dict[int, str | None]:
        """{crop id: current label (None: cleared)} of every crop that has a label event."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT crop_id, label FROM current_labels ORDER BY crop_id")}

    def count_suggested_labels(self) -> int:
        """Crops whose current label is a model suggestion accepted in `lrfp label`."""
        return self.conn.execute("SELECT COUNT(*) FROM current_labels WHERE suggested = 1").fetchone()[0]

    def labeled_since(self, crop_id: int, since: str) -> bool:
        """Whether anyone gave the crop a (non-review) label event after the time `since` (ISO text)."""
        return self.conn.execute(
            "SELECT 1 FROM labels WHERE crop_id = ? AND kind != 'review' AND created_at > ? LIMIT 1",
            (crop_id, since)).fetchone() is not None

    def append_label(self, crop_id: int, label: str | None, annotator: str, kind: str = "label",
                     *, suggested: bool = False) -> int:
        """`add_label` inside the caller's `transaction()` (committed with the rest of it). Raises NotFoundError
        when the crop is not in the store (another command removed it)."""
        try:
            cur = self.conn.execute(
                "INSERT INTO labels(crop_id, label, annotator, kind, created_at, suggested) VALUES (?, ?, ?, ?, ?, ?)",
                (crop_id, label, annotator, kind, now(), int(suggested)),
            )
        except sqlite3.IntegrityError as e:
            if self.conn.execute("SELECT 1 FROM crops WHERE id = ?", (crop_id,)).fetchone() is None:
                raise NotFoundError(f"crop {crop_id} is not in the store (another command may have removed it)") from e
            raise
        return int(cur.lastrowid)

    def set_crop_group(self, crop_id: int, group_id: str | None) -> None:
        """Set a crop's group id (an import's groups CSV changed). Call inside `transaction()`."""
        self.conn.execute("UPDATE crops SET group_id = ? WHERE id = ? AND group_id IS NOT ?", (group_id, crop_id, group_id))

    def current_label(self, crop_id: int) -> str | None:
        row = self.conn.execute("SELECT label FROM current_labels WHERE crop_id = ?", (crop_id,)).fetchone()
        return row[0] if row else None

    def label_history(self, crop_id: int) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM labels WHERE crop_id = ? ORDER BY id", (crop_id,)
        ).fetchall()

    # -- predictions -----------------------------------------------------------------------------

    def add_predictions(self, predictions: Sequence[NewPrediction]) -> int:
        """Append predictions (one transaction: all or none). Returns how many were stored.

        Labels are not touched. Raises ValueError for a prediction without classes, and
        sqlite3.IntegrityError (nothing stored) for one naming a crop that does not exist.
        """
        ts = now()
        rows = []
        for p in predictions:
            if not p.probs:
                raise ValueError(f"prediction for crop {p.crop_id} has no class probabilities")
            rows.append((
                p.crop_id, p.checkpoint_sha256, p.config, json.dumps({k: float(v) for k, v in p.probs.items()}),
                p.predicted, p.confidence, ts,
            ))
        with self.transaction():
            self.conn.executemany(
                """INSERT INTO predictions(crop_id, checkpoint_sha256, config, probs, predicted, confidence, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
        return len(rows)

    def latest_predictions(self, crop_ids: Sequence[int] | None = None) -> dict[int, StoredPrediction]:
        """The latest prediction (last stored, whatever its checkpoint) of each crop that has one.

        crop_ids=None: every predicted crop. Returns {crop_id: StoredPrediction}; crops without a prediction
        are absent.
        """
        sql = """SELECT p.* FROM predictions p
                 WHERE p.id = (SELECT MAX(id) FROM predictions WHERE crop_id = p.crop_id)"""
        if crop_ids is None:
            rows = self.conn.execute(sql).fetchall()
        else:
            rows = []
            unique = list(dict.fromkeys(int(i) for i in crop_ids))
            for i in range(0, len(unique), IN_LIST_CHUNK):
                chunk = unique[i : i + IN_LIST_CHUNK]
                rows += self.conn.execute(f"{sql} AND p.crop_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return {
            r["crop_id"]: StoredPrediction(
                crop_id=r["crop_id"], checkpoint_sha256=r["checkpoint_sha256"], config=r["config"],
                probs=json.loads(r["probs"]), predicted=r["predicted"], confidence=r["confidence"],
                created_at=r["created_at"],
            )
            for r in rows
        }

    def count_predicted_crops(self) -> int:
        """How many crops have at least one prediction."""
        return self.conn.execute("SELECT COUNT(DISTINCT crop_id) FROM predictions").fetchone()[0]

    def count_prediction_disagreements(self) -> int:
        """How many crops' latest prediction differs from their current label (the latest non-review label
        event, see `current_labels`). Only crops whose label is a class the prediction has count: a crop
        labeled unusable or skip, or not labeled, neither agrees nor disagrees."""
        return self.conn.execute(
            """SELECT COUNT(*) FROM predictions p
               JOIN current_labels cl ON cl.crop_id = p.crop_id
               WHERE p.id = (SELECT MAX(id) FROM predictions WHERE crop_id = p.crop_id)
                 AND cl.label IS NOT NULL
                 AND json_type(p.probs, '$."' || cl.label || '"') IS NOT NULL
                 AND cl.label != p.predicted"""
        ).fetchone()[0]

    # -- label issues (lrfp review-labels) -------------------------------------------------------

    def save_label_issues(self, run_id: str, created_at: str, params: dict[str, Any],
                          rows: Sequence[dict[str, Any]]) -> None:
        """Store one review-labels run: its params and one row per crop (crop_id, rank, quality,
        given_label, suggested_label, p_suggested, is_issue), atomically. Earlier runs are kept."""
        with self.transaction():
            self.conn.execute("INSERT INTO label_issue_runs(run_id, params, created_at) VALUES (?, ?, ?)",
                              (run_id, json.dumps(params, sort_keys=True), created_at))
            self.conn.executemany(
                """INSERT INTO label_issues(run_id, crop_id, rank, quality, given_label, suggested_label,
                       p_suggested, is_issue) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                ((run_id, r["crop_id"], r["rank"], r["quality"], r["given_label"], r["suggested_label"],
                  r["p_suggested"], int(r["is_issue"])) for r in rows),
            )

    def latest_label_issues_run(self) -> sqlite3.Row | None:
        """The newest review-labels run (run_id, params, created_at), or None when there is none."""
        return self.conn.execute(
            "SELECT * FROM label_issue_runs ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone()

    def label_issues(self, run_id: str, only_issues: bool = False) -> list[sqlite3.Row]:
        """A run's rows in rank order (most likely wrong first); only_issues keeps cleanlab's flagged ones."""
        sql = "SELECT * FROM label_issues WHERE run_id = ?" + (" AND is_issue = 1" if only_issues else "")
        return self.conn.execute(sql + " ORDER BY rank", (run_id,)).fetchall()

    # -- splits ----------------------------------------------------------------------------------

    def save_split(
        self, name: str, assignments: Iterable[tuple[int, str]], *, seed: int | None,
        params: dict[str, Any], report: dict[str, Any],
    ) -> None:
        """Replace the split `name` with these (crop_id, subset) pairs, atomically, and make it the last used."""
        with self.transaction():
            self.conn.execute("DELETE FROM splits WHERE name = ?", (name,))
            self.conn.execute(
                "INSERT INTO splits(name, seed, params, report, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, seed, json.dumps(params, sort_keys=True), json.dumps(report, sort_keys=True), now()),
            )
            self.conn.executemany(
                "INSERT INTO split_assignments(split_name, crop_id, subset) VALUES (?, ?, ?)",
                ((name, crop_id, subset) for crop_id, subset in assignments),
            )
            self.conn.execute(
                "INSERT INTO settings(key, value) VALUES ('last_split', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (name,),
            )

    def split_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM splits ORDER BY created_at")]

    def resolve_split(self, name: str | None = None) -> str:
        """The split to use: `name` if given, else the last one `lrfp split` wrote."""
        if name is None:
            name = self.get_setting("last_split")
            if name is None:
                raise NoSplitError("the store has no split yet: run `lrfp split` first")
        if self.conn.execute("SELECT 1 FROM splits WHERE name = ?", (name,)).fetchone() is None:
            known = ", ".join(self.split_names()) or "none"
            raise NotFoundError(f"no split named {name!r} (known: {known})")
        return name

    def split_info(self, name: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM splits WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no split named {name!r}")
        return {
            "name": row["name"], "seed": row["seed"], "params": json.loads(row["params"]),
            "report": json.loads(row["report"]), "created_at": row["created_at"],
        }

    def split_crops(self, name: str, subset: str | None = None) -> list[sqlite3.Row]:
        """Crops of a split with their current label and subset, in a stable order (subset, crop id).

        Each row: every crops column, plus subset, label (None when cleared), source_name, source_kind,
        source_url and source_license -- what publish and the bench need, from one query.
        """
        sql = """SELECT c.*, a.subset, cl.label, s.name AS source_name, s.kind AS source_kind,
                        s.url AS source_url, s.license AS source_license
                 FROM split_assignments a
                 JOIN crops c ON c.id = a.crop_id
                 JOIN sources s ON s.id = c.source_id
                 LEFT JOIN current_labels cl ON cl.crop_id = c.id
                 WHERE a.split_name = ?"""
        args: list[Any] = [name]
        if subset is not None:
            sql += " AND a.subset = ?"
            args.append(subset)
        return self.conn.execute(sql + " ORDER BY a.subset, c.id", args).fetchall()

    def split_label_counts(self, name: str) -> dict[str, dict[str, int]]:
        """{subset: {current label or "unlabeled": crops}} of the split `name`."""
        counts: dict[str, dict[str, int]] = {}
        for r in self.conn.execute(
            """SELECT a.subset, COALESCE(cl.label, 'unlabeled') AS label, COUNT(*) AS n FROM split_assignments a
               LEFT JOIN current_labels cl ON cl.crop_id = a.crop_id WHERE a.split_name = ? GROUP BY 1, 2""",
            (name,),
        ):
            counts.setdefault(r["subset"], {})[r["label"]] = r["n"]
        return counts

    def split_label_events(self, name: str) -> list[sqlite3.Row]:
        """Every label event (crop_id, label, annotator, kind, suggested) of the crops of split `name`, oldest first."""
        return self.conn.execute(
            """SELECT l.crop_id, l.label, l.annotator, l.kind, l.suggested FROM labels l
               JOIN split_assignments a ON a.crop_id = l.crop_id AND a.split_name = ? ORDER BY l.id""",
            (name,),
        ).fetchall()

    # -- reads shared by stats, split, label and publish -----------------------------------------

    def crops_with_labels(self) -> list[sqlite3.Row]:
        """Every crop with its source and current label, by crop id (the join `lrfp stats` and split share).

        Each row: id, path, sha256, original, width, height, box_w, box_h, track_id, group_id, source_id,
        source_name, source_kind, label (None when unlabeled or cleared).
        """
        return self.conn.execute(
            """SELECT c.id, c.path, c.sha256, c.original, c.width, c.height, c.box_w, c.box_h, c.track_id, c.group_id,
                      c.source_id, s.name AS source_name, s.kind AS source_kind, cl.label
               FROM crops c JOIN sources s ON s.id = c.source_id
               LEFT JOIN current_labels cl ON cl.crop_id = c.id ORDER BY c.id"""
        ).fetchall()

    def crop_paths(self, *, unlabeled_only: bool = False, source_id: int | None = None,
                   limit: int | None = None) -> list[tuple[int, str]]:
        """(crop id, stored path) in id order: every crop, or those without a current label, or of one
        source; at most `limit`."""
        sql = "SELECT c.id, c.path FROM crops c"
        where = []
        args: tuple[Any, ...] = ()
        if unlabeled_only:
            sql += " LEFT JOIN current_labels cl ON cl.crop_id = c.id"
            where.append("cl.label IS NULL")
        if source_id is not None:
            where.append("c.source_id = ?")
            args += (source_id,)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY c.id"
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        return [(r[0], r[1]) for r in self.conn.execute(sql, args)]

    def count_unlabeled(self) -> int:
        """Crops with no current label (never labeled, or cleared by an undo)."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM crops c LEFT JOIN current_labels cl ON cl.crop_id = c.id WHERE cl.label IS NULL"
        ).fetchone()[0]

    def crop_in_context(self, crop_id: int) -> sqlite3.Row:
        """One crop with its source name and its frame's path and size (frame_path, frame_w, frame_h;
        None when no frame was kept). Raises NotFoundError for an unknown id."""
        row = self.conn.execute(
            """SELECT c.*, s.name AS source_name, f.path AS frame_path, f.width AS frame_w, f.height AS frame_h
               FROM crops c JOIN sources s ON s.id = c.source_id LEFT JOIN frames f ON f.id = c.frame_id
               WHERE c.id = ?""",
            (crop_id,),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no crop with id {crop_id}")
        return row

    def frames_per_source(self) -> dict[int, int]:
        """{source id: frames recorded} for every source with at least one frame."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT source_id, COUNT(*) FROM frames GROUP BY 1")}

    def has_reviews(self) -> bool:
        """Whether any review event (`lrfp label --review`) was written."""
        return self.conn.execute("SELECT 1 FROM labels WHERE kind = 'review' LIMIT 1").fetchone() is not None

    def latest_reviews(self) -> list[sqlite3.Row]:
        """Each reviewer's latest review of each crop beside the crop's current label, by crop and reviewer.

        Each row: crop_id, reviewer, review, label, annotator and suggested (of the current label: None
        when the crop has none; suggested 1 when it was a model suggestion accepted in `lrfp label`), path.
        """
        return self.conn.execute(
            """SELECT r.crop_id, r.annotator AS reviewer, r.label AS review, cl.label AS label,
                      cl.annotator AS annotator, cl.suggested AS suggested, c.path
               FROM labels r
               JOIN crops c ON c.id = r.crop_id
               LEFT JOIN current_labels cl ON cl.crop_id = r.crop_id
               WHERE r.kind = 'review'
                 AND r.id = (SELECT MAX(id) FROM labels WHERE crop_id = r.crop_id AND kind = 'review'
                             AND annotator = r.annotator)
               ORDER BY r.crop_id, r.annotator"""
        ).fetchall()

    # -- imports ---------------------------------------------------------------------------------

    def imported_files(self, source_id: int) -> dict[str, int | None]:
        """relpath -> crop id of every file of the source an import stored (as a crop or an exact duplicate)."""
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT relpath, crop_id FROM imported_files WHERE source_id = ? AND status IN ('imported', 'duplicate')",
            (source_id,),
        )}

    def imported_file_crops(self) -> list[tuple[str, int]]:
        """(file sha256, crop id) of every file an import read into a crop (any source)."""
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT file_sha256, crop_id FROM imported_files WHERE crop_id IS NOT NULL AND file_sha256 IS NOT NULL")]

    def imported_file_statuses(self, source_id: int) -> dict[str, str]:
        """relpath -> status (imported, duplicate, conflict, skipped) of every file of the source an import saw."""
        return {r[0]: r[1] for r in self.conn.execute(
            "SELECT relpath, status FROM imported_files WHERE source_id = ?", (source_id,))}

    def superseded_import_crops(self) -> set[int]:
        """Ids of crops of imported folders that no imported file points at any more: an `lrfp import --redo` made
        their files' new crops and kept these only because a saved split holds them (`lrfp split` leaves them out)."""
        return {r[0] for r in self.conn.execute(
            """SELECT c.id FROM crops c JOIN sources s ON s.id = c.source_id WHERE s.kind = 'folder'
               AND EXISTS (SELECT 1 FROM imported_files f WHERE f.source_id = s.id)
               AND NOT EXISTS (SELECT 1 FROM imported_files f WHERE f.crop_id = c.id)""")}

    def remove_unreferenced_import_crops(self, source_id: int) -> tuple[int, int]:
        """After `lrfp import --redo`: delete the source's crops no imported file points at any more (made with the
        earlier settings; their files' new crops carry the person's labels), unless a saved split holds them
        (`prune_source_crops`' rule for fetch: a split never loses a crop silently).

        One transaction from the check to the delete; rows go before files. Returns (removed, kept for splits)."""
        with self.transaction():
            rows = self.conn.execute(
                """SELECT c.id, c.path, EXISTS (SELECT 1 FROM split_assignments a WHERE a.crop_id = c.id) AS held
                   FROM crops c WHERE c.source_id = ?
                   AND NOT EXISTS (SELECT 1 FROM imported_files f WHERE f.crop_id = c.id)""", (source_id,)).fetchall()
            gone = [r for r in rows if not r["held"]]
            for i in range(0, len(gone), IN_LIST_CHUNK):
                chunk = [r["id"] for r in gone[i : i + IN_LIST_CHUNK]]
                self.conn.execute(f"DELETE FROM crops WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        for r in gone:
            with contextlib.suppress(OSError):
                (self.root / r["path"]).unlink()
        return len(gone), len(rows) - len(gone)

    def copy_label_events(self, from_crop: int, to_crop: int, *, except_kind: str) -> tuple[int, int]:
        """Copy the label events of `from_crop` other than those of kind `except_kind` onto `to_crop`, oldest first,
        each with its own label, annotator, kind, time and suggested flag (who labeled it, and when), leaving out
        events `to_crop` already has. Call inside `transaction()`. Returns (events copied now, events of `from_crop`
        that `to_crop` has now, copied now or before)."""
        have = {tuple(r) for r in self.conn.execute(
            "SELECT label, annotator, kind, created_at, suggested FROM labels WHERE crop_id = ?", (to_crop,))}
        events = [tuple(r) for r in self.conn.execute(
            "SELECT label, annotator, kind, created_at, suggested FROM labels WHERE crop_id = ? AND kind != ? ORDER BY id",
            (from_crop, except_kind))]
        new = [e for e in events if e not in have]
        self.conn.executemany(
            "INSERT INTO labels(crop_id, label, annotator, kind, created_at, suggested) VALUES (?, ?, ?, ?, ?, ?)",
            [(to_crop, *e) for e in new])
        return len(new), len(events)

    def is_imported(self, source_id: int, relpath: str) -> bool:
        """Whether this file of this source is already stored (or counted as a duplicate)."""
        return self.conn.execute(
            "SELECT 1 FROM imported_files WHERE source_id = ? AND relpath = ? AND status IN ('imported', 'duplicate')",
            (source_id, relpath),
        ).fetchone() is not None

    def imported_file_with_sha256(self, file_sha256: str) -> sqlite3.Row | None:
        """An imported file with these bytes that became a crop: crop_id, relpath, name (its source) and
        label (the crop's current label), or None."""
        return self.conn.execute(
            """SELECT f.crop_id, f.relpath, s.name, cl.label FROM imported_files f
               JOIN sources s ON s.id = f.source_id LEFT JOIN current_labels cl ON cl.crop_id = f.crop_id
               WHERE f.file_sha256 = ? AND f.crop_id IS NOT NULL LIMIT 1""",
            (file_sha256,),
        ).fetchone()

    def record_imported_file(
        self, source_id: int, relpath: str, file_sha256: str | None, crop_id: int | None, status: str,
        reason: str | None,
    ) -> None:
        """Record what an import did with one file (status imported, duplicate, conflict or skipped).
        Call inside `transaction()`: the caller commits it with the crop it belongs to."""
        self.conn.execute(
            """INSERT INTO imported_files(source_id, relpath, file_sha256, crop_id, status, reason) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(source_id, relpath) DO UPDATE SET file_sha256 = excluded.file_sha256,
                   crop_id = excluded.crop_id, status = excluded.status, reason = excluded.reason""",
            (source_id, relpath, file_sha256, crop_id, status, reason),
        )

    # -- queries ---------------------------------------------------------------------------------

    def query(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Raw SQL, for the label session's state queries only (lrfp/label/session.py says why they stay there).
        Anything else reads through a named method above."""
        return self.conn.execute(sql, args).fetchall()


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (sqlite3.executescript would commit our transaction)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    statements, buf = [], ""
    for piece in "\n".join(lines).split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                statements.append(buf.strip())
            buf = ""
    return statements


def _older_schema(db_path: Path) -> bool:
    """Whether the lrfp store at db_path has a schema version below this lrfp's (read without writing)."""
    try:
        con = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return False  # not readable as SQLite: the normal open says so
    return 0 < version < latest_schema_version()


def _no_space_left(root: Path) -> bool:
    """Whether the file system holding `root` has (almost) no space left: under 64 KiB free to this user."""
    try:
        st = os.statvfs(root)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _wal_has_changes(db_path: Path) -> bool:
    """Whether the store's -wal file holds changes not yet in the main file (a reader then needs the -shm)."""
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


def _check_writable(root: Path) -> str | None:
    """Why `root` cannot be written (None: it can): lrfp.paths.probe_writable's real write."""
    try:
        probe_writable(root)
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def _pid_alive(tmp: Path) -> bool:
    """Whether the process that named this temporary file (`<name>.<pid>.tmp`) still runs."""
    try:
        pid = int(tmp.suffixes[-2].lstrip("."))
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_store(data_dir: Path | str, *, create: bool = True, read_only: bool = False) -> Store:
    """Open the store in data_dir (see Store); read_only=True for commands that never write to it."""
    return Store(data_dir, create=create, read_only=read_only)
