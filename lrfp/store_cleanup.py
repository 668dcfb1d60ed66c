"""Leave no empty store behind: a command that creates a store and then refuses its input (or fails before storing
anything) removes the store it created."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from lrfp import run_lock
from lrfp.run_lock import LOCKS_DIR
from lrfp.store import DB_NAME, TMP_DIR

_DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal")


@contextlib.contextmanager
def removed_if_left_empty(data_dir: Path | str):  # noqa: ANN201 - a context manager
    """Run the block; when it raises and `data_dir` held no store before it, remove the store the block created if it
    holds no row (no source, crop, label, split...), and `data_dir` itself if the block created it and it is left
    empty. A store that already existed, that holds anything, or that another process has open (its -wal or -shm
    file is there) is never touched. The exception is re-raised."""
    data_dir = Path(data_dir).expanduser()
    dir_existed = data_dir.exists()
    store_existed = (data_dir / DB_NAME).exists()
    try:
        yield
    except BaseException:
        if not store_existed:
            with contextlib.suppress(OSError, sqlite3.Error):
                _remove_empty_store(data_dir, remove_dir=not dir_existed)
        raise


def _remove_empty_store(data_dir: Path, *, remove_dir: bool) -> None:
    db = data_dir / DB_NAME
    if any((data_dir / name).exists() for name in _DB_FILES[1:]):
        return  # another connection has it open (SQLite removes -wal and -shm when the last one closes): keep it
    if not db.is_file() or not _holds_no_row(db):
        return
    for name in _DB_FILES:
        (data_dir / name).unlink(missing_ok=True)
    locks = data_dir / LOCKS_DIR
    if locks.is_dir():  # the lock files the run held (released now): empty, and no other process holds them
        for lock in locks.glob("*.lock"):
            command = lock.name[: -len(".lock")]
            if lock.stat().st_size == 0 and run_lock.is_held(data_dir, command) is False:
                lock.unlink(missing_ok=True)
    for sub in ("crops", TMP_DIR, LOCKS_DIR):  # made empty with the store; a folder still holding files is kept
        with contextlib.suppress(OSError):
            (data_dir / sub).rmdir()
    if remove_dir:
        with contextlib.suppress(OSError):  # not empty (another file put there): kept
            data_dir.rmdir()


def _holds_no_row(db: Path) -> bool:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return not any(conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables)
    finally:
        conn.close()
