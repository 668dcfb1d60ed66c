"""Test inputs for `lrfp predict`: a real checkpoint trained here in seconds, a short real clip, bad checkpoints."""

from __future__ import annotations

from pathlib import Path

from conftest import build_store

STAGE_360 = "face_recognition_short_hamilton_clip.mp4"


def train_tiny_checkpoint(root: Path, smfd: Path) -> tuple[Path, Path]:
    """`lrfp bench --model model3 --epochs 1 --input-size 32` (the library call) on a small SMFD store.

    Returns (bench results folder, data dir). About 8 s on one core.
    """
    from bench_helpers import grouped_split

    from benchmark.harness import BenchConfig, run_bench

    data = root / "data"
    store = build_store(data, smfd, n_groups=12)
    grouped_split(store)
    store.close()
    out = root / "bench"
    run_bench(BenchConfig(data_dir=data, out=out, models=("model3",), protocol="quick", epochs=1, input_size=32,
                          seeds=1, device="cpu"))
    return out, data


def cut_clip(src: Path, dest: Path, start_s: float, seconds: float) -> Path:
    """`seconds` of a real clip from start_s, re-encoded with OpenCV (mp4v), at the source's size and rate."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(start_s * fps))
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(int(seconds * fps)):
        ok, frame = cap.read()
        if not ok:
            break
        out.write(frame)
    cap.release()
    out.release()
    return dest


def faceless_clip(src: Path, dest: Path, seconds: float = 1.0) -> Path:
    """A real clip's top-left corner (above the people: wall and ceiling), no face in it."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS)
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 64))
    for _ in range(int(seconds * fps)):
        ok, frame = cap.read()
        if not ok:
            break
        out.write(frame[0:64, 0:160].copy())
    cap.release()
    out.release()
    return dest
