"""run_lock: which lrfp command is at work on a store, through real flock(2) locks held by real other processes."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lrfp import run_lock
from lrfp.run_lock import StoreBusyError, hold, is_held

HOLDER = """
import sys, time
from pathlib import Path
from lrfp import run_lock
with run_lock.hold(Path(sys.argv[1]), sys.argv[2], shared=sys.argv[3] == "shared", doing="manifest m.csv"):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(root: Path, command: str, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), command, mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", "the holder process did not take the lock"
    return proc


@pytest.fixture
def quick(monkeypatch) -> None:
    monkeypatch.setattr(run_lock, "ACQUIRE_WAIT_S", 0.3)


def test_a_second_fetch_is_refused_naming_the_first_and_a_killed_holder_frees_the_store(tmp_path: Path, quick) -> None:
    assert is_held(tmp_path, "fetch") is False  # no lock file yet
    proc = start_holder(tmp_path, "fetch", "exclusive")
    try:
        assert is_held(tmp_path, "fetch") is True
        with pytest.raises(StoreBusyError) as e:
            with hold(tmp_path, "fetch", hint="give one run more --workers"):
                pass
        msg = str(e.value)
        assert f"another `lrfp fetch` is running on the store in {tmp_path} (pid {proc.pid}, since " in msg
        assert "manifest m.csv" in msg and f"`kill {proc.pid}`" in msg and msg.endswith("give one run more --workers")
        assert e.value.exit_code == 1
        assert is_held(tmp_path, "fetch") is True  # the refused attempt took nothing from the holder
        assert is_held(tmp_path, "import") is False  # another command's lock is apart
    finally:
        proc.send_signal(signal.SIGKILL)  # no cleanup at all: the OS releases the lock
        proc.wait()
    assert is_held(tmp_path, "fetch") is False
    with hold(tmp_path, "fetch"):
        assert is_held(tmp_path, "fetch") is True  # another descriptor, even in this process, sees it
    assert is_held(tmp_path, "fetch") is False


def test_shared_holders_run_together_and_are_seen(tmp_path: Path, quick) -> None:
    proc = start_holder(tmp_path, "import", "shared")
    try:
        with hold(tmp_path, "import", shared=True):  # a second import of another folder runs beside it
            assert is_held(tmp_path, "import") is True
        assert is_held(tmp_path, "import") is True
        with pytest.raises(StoreBusyError, match=r"another `lrfp import` is running on the store in .*Ctrl-C in its terminal"):
            with hold(tmp_path, "import"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert is_held(tmp_path, "import") is False


def test_a_probe_at_the_instant_a_run_starts_does_not_refuse_it(tmp_path: Path) -> None:
    """is_held takes the lock for a moment to ask; hold retries meanwhile instead of refusing the run."""
    with hold(tmp_path, "fetch"):
        pass  # the lock file exists
    fd = os.open(run_lock.lock_path(tmp_path, "fetch"), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a probe that holds it (far longer than a real one)
    threading.Timer(0.3, os.close, (fd,)).start()
    t0 = time.monotonic()
    with hold(tmp_path, "fetch"):
        assert time.monotonic() - t0 >= 0.25


def test_a_file_system_without_locks_runs_unlocked_and_says_so(tmp_path: Path, monkeypatch, caplog) -> None:
    """Some network mounts answer flock(2) with ENOLCK: the command still runs (injected: no such mount here)."""
    import errno

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    ran = False
    with caplog.at_level("WARNING", logger="lrfp.run_lock"), hold(tmp_path, "fetch"):
        ran = True
    assert ran
    assert f"the store in {tmp_path} cannot be locked (No locks available)" in caplog.text
    assert is_held(tmp_path, "fetch") is None  # cannot be told: stats then calls no row left behind


def test_stats_says_a_running_video_is_left_behind_unless_the_live_fetch_names_it(tmp_path: Path) -> None:
    """Tester2's bug 5: a video left `running` by a killed fetch read as not left behind while any other fetch
    ran on the store (the lock is per store); the live fetch now names its sources in its lock."""
    from lrfp.stats import collect_stats
    from lrfp.store import open_store

    with open_store(tmp_path / "data") as store:
        for name in ("fn", "other"):
            store.upsert_source(name, "video", url=f"http://127.0.0.1:1/{name}.mp4", status="running")

        def left() -> dict[str, bool | None]:
            return {x["name"]: x["left_by_stopped_run"] for x in collect_stats(store)["sources"]}

        assert left() == {"fn": True, "other": True}  # no fetch runs
        with hold(store.root, run_lock.FETCH, doing="manifest b.csv") as describe:
            assert left() == {"fn": False, "other": False}  # its plan not done yet: it may be working on either
            describe(sources=["other"])
            assert left() == {"fn": True, "other": False}
            assert collect_stats(store)["running_now"]["fetch"]["sources"] == ["other"]
            assert run_lock.holder(store.root, run_lock.FETCH)["doing"] == "manifest b.csv"
        assert left() == {"fn": True, "other": True}
