"""`lrfp fetch` when a video's final status cannot be stored (a full disk whose last bytes another worker took, a
store locked by another process): no row stays `running` where the store can still be written once the run has
stopped, and a row left `running` (nothing could be written) is redone by a plain rerun without duplicating crops.

The example (issue: two workers on a 900 KB tmpfs, a race): the worker that hit the full disk removed its download,
but the other worker's download still filled the disk, so its `error` status was not stored and the row stayed
`running`. Here the failing status write is forced, without timing luck: by a patched `Store.set_source_status`
raising ENOSPC as the OS would (the disk freed afterwards, when the workers' downloads are removed), or by a real
SQLite lock held by another connection. Real yt-dlp downloads from an HTTP server on 127.0.0.1 (the edge of the
network), real MediaPipe, real store.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from pathlib import Path

import pytest

from fetch_helpers import STAGE_360, run_cli, serve, write_manifest
from lrfp.store import Store, open_store


@pytest.fixture
def models(shared_dir: Path) -> str:
    return str(shared_dir / "models")


def fetch(manifest: Path, data: Path, models: str, *extra: str) -> int:
    return run_cli(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0", "--every", "1",
                    *extra])


def status(data: Path, name: str) -> tuple[str, str | None]:
    with open_store(data, create=False) as s:
        src = s.source(name)
        return src["status"], src["error"]


def crops(data: Path) -> list[str]:
    """The sha256 of every stored crop, sorted."""
    with open_store(data, create=False) as s:
        return sorted(r["sha256"] for r in s.query("SELECT sha256 FROM crops"))


def full(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_status_the_full_disk_refused_is_stored_once_the_run_has_stopped(shared_dir: Path, models: str,
                                                                          tmp_path: Path, monkeypatch, capsys) -> None:
    """The issue's race, forced: storing crops fails (disk full), and so does the video's `error` status (the
    other worker's bytes); the row used to stay `running`. It is `interrupted` now, which a plain rerun redoes."""
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/{STAGE_360}", "id": "stage"}])
        with monkeypatch.context() as m:
            m.setattr(Store, "add_frames_and_crops", full)
            m.setattr(Store, "set_source_status", full)
            assert fetch(manifest, data, models) == 1
        err = capsys.readouterr().err
        message = f"the data folder {data.resolve()} is full: No space left on device"
        assert f"Error: {message}" in err and "Traceback" not in err and "left `running`" not in err, err
        st, error = status(data, "stage")
        assert st == "interrupted", (st, error)
        assert error.startswith(f"the run ended before this video's status could be stored ({message}") and error.endswith(
            "rerun the same command to finish (crops stored so far are kept)"), error
        assert fetch(manifest, data, models) == 0  # space freed: the same command finishes it
    assert status(data, "stage") == ("ok", None)


def test_a_row_left_running_is_redone_by_a_plain_rerun_without_duplicate_crops(shared_dir: Path, models: str,
                                                                               tmp_path: Path, monkeypatch, capsys) -> None:
    """Nothing can be stored at the end (not even after the run stopped), as after a kill -9: the row stays
    `running`, the error names it, and a plain rerun redoes it: `ok`, the same crops, none stored twice."""
    data = tmp_path / "data"
    with serve(shared_dir / "data" / "videos") as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/{STAGE_360}", "id": "stage"}])
        with monkeypatch.context() as m:
            m.setattr(Store, "set_source_status", full)  # the final `ok` (and then `error`) cannot be stored
            m.setattr(Store, "replace_status", full)  # nor anything after the run stopped
            assert fetch(manifest, data, models) == 1
        err = capsys.readouterr().err
        assert "is full: No space left on device" in err and "Traceback" not in err, err
        assert ("The status of 1 video(s) being processed could not be stored (stage: left `running`); the rerun "
                "redoes them.") in err, err
        assert status(data, "stage") == ("running", None)
        stored = crops(data)
        assert stored  # the crops were stored before the status write failed
        assert fetch(manifest, data, models) == 0  # the same command, no --retry-failed
    assert status(data, "stage") == ("ok", None)
    assert crops(data) == stored  # identical crops, each stored once
    out, err = capsys.readouterr()
    assert f"stage: ok  {len(stored)} crops from" in err, err
    assert re.search(rf"crops kept \(new in the store\)\s*│\s*{len(stored)} \(0\) │", out), out  # none new


def test_a_store_locked_past_the_busy_timeout_ends_the_run_and_leaves_no_row_running(
        shared_dir: Path, models: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """A real SQLite lock: another connection holds the store's write lock while the video's final status is
    written (the busy timeout shortened to 0.2 s). The run ends with a clear error (not an 'unexpected' one), and
    once the lock is gone the row is `interrupted`, not `running`."""
    import lrfp.store

    data = tmp_path / "data"
    monkeypatch.setattr(lrfp.store, "BUSY_TIMEOUT_MS", 200)
    original = Store.set_source_status

    def while_locked(self, *a, **k):
        other = sqlite3.connect(self.db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock, as another lrfp command's long write holds it
        try:
            return original(self, *a, **k)
        finally:
            other.execute("ROLLBACK")
            other.close()

    monkeypatch.setattr(Store, "set_source_status", while_locked)
    with serve(shared_dir / "data" / "videos") as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/{STAGE_360}", "id": "stage"}])
        assert fetch(manifest, data, models) == 1
    err = capsys.readouterr().err
    assert (f"Error: the store in {data.resolve()} stayed locked by another process for 0.2 s (database is locked); "
            "let the other lrfp command finish (or stop it) and rerun the same command to finish") in err, err
    st, error = status(data, "stage")
    assert st == "interrupted" and "database is locked" in error, (st, error)


@pytest.mark.parametrize("exc, words", [
    (OSError(errno.EROFS, "Read-only file system"), "became read-only"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "became read-only"),
    (sqlite3.OperationalError("database is locked"), "stayed locked by another process"),
    (OSError(errno.ENOSPC, "No space left on device"), "is full: No space left on device"),
])
def test_a_store_that_cannot_be_written_ends_the_run(exc: BaseException, words: str, tmp_path: Path) -> None:
    """Every way the store stops taking writes is a run-level error naming the data folder (the next videos, and
    this one's status, would fail the same way); a video's own failure is not."""
    from lrfp.fetch.video import run_level_error

    wrapped = RuntimeError("storing the crops failed")
    wrapped.__cause__ = exc
    for e in (exc, wrapped):
        got = run_level_error(e, tmp_path)
        assert got is not None and words in str(got) and str(tmp_path) in str(got), (e, got)
    assert run_level_error(ValueError("a bad frame"), tmp_path) is None


def test_a_store_write_outside_a_video_that_fails_is_the_same_run_error(shared_dir: Path, models: str, tmp_path: Path,
                                                                        monkeypatch, capsys) -> None:
    """The store refuses the write that starts a video (`running`), outside fetch_video's own handling (as the
    pool's writes for a dead worker's video are): the same `Error: the data folder ... is full` (not an
    'unexpected OperationalError'), and the row stays `pending`, which the rerun does."""
    original = Store.upsert_source

    def refuses_running(self, name, kind, **fields):
        if fields.get("status") == "running":
            raise sqlite3.OperationalError("database or disk is full")  # SQLite's words on a full disk
        return original(self, name, kind, **fields)

    data = tmp_path / "data"
    monkeypatch.setattr(Store, "upsert_source", refuses_running)
    manifest = write_manifest(tmp_path / "m.csv", [{"url": "http://127.0.0.1:9/stage.mp4", "id": "stage"}])
    assert fetch(manifest, data, models) == 1
    err = capsys.readouterr().err
    assert f"Error: the data folder {data.resolve()} is full: No space left on device" in err and "unexpected" not in err, err
    assert status(data, "stage") == ("pending", None)
