"""Test clips the speed scripts make from the shared videos (written to a temporary folder, never committed)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared"))
ARCADE = SHARED / "data" / "videos" / "facenet-pytorch_video.mp4"


def arcade_480p(dest: Path, *, fps: float | None = None, seconds: float | None = None) -> Path:
    """The 1080p arcade clip shrunk to 854x480 (cv2.INTER_AREA) and played forward, back, forward, ... into
    `dest` (MPEG-4 part 2) at `fps` (default: the clip's own) for `seconds` (default: three passes)."""
    import cv2

    cap = cv2.VideoCapture(str(ARCADE))
    fps = fps or cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (854, 480), interpolation=cv2.INTER_AREA))
    cap.release()
    loop = frames + frames[::-1]
    n = round(seconds * fps) if seconds is not None else 3 * len(frames)
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (854, 480))
    for i in range(n):
        out.write(loop[i % len(loop)])
    out.release()
    return dest
