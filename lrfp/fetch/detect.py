"""Face detection on one frame with MediaPipe's Tasks FaceDetector (BlazeFace); closed explicitly."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels, clipped to the frame
    score: float


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """MediaPipe/LiteRT log straight to fd 2 (model warnings, delegate info): keep them off the terminal, in the log."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("mediapipe: %s", text)


class FaceDetector:
    """A MediaPipe FaceDetector for RGB frames. Use as a context manager (or call close())."""

    def __init__(self, model_path: Path, min_score: float = 0.5) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
        )
        with _quiet_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)
        self.min_score = min_score
        self._calls = 0

    def detect(self, rgb: Any) -> list[Detection]:
        """Faces in an RGB uint8 frame (H x W x 3), best first."""
        import mediapipe as mp
        import numpy as np

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._calls == 0:  # the first call logs a LiteRT memory-alignment notice straight to fd 2
            with _quiet_native_stderr():
                result = self._detector.detect(image)
        else:
            result = self._detector.detect(image)
        self._calls += 1
        out = []
        for d in result.detections:
            bb = d.bounding_box
            x0, y0 = max(0, bb.origin_x), max(0, bb.origin_y)
            x1, y1 = min(w, bb.origin_x + bb.width), min(h, bb.origin_y + bb.height)
            if x1 <= x0 or y1 <= y0:
                continue
            score = float(d.categories[0].score) if d.categories else 0.0
            if score < self.min_score:
                continue
            out.append(Detection((int(x0), int(y0), int(x1 - x0), int(y1 - y0)), score))
        out.sort(key=lambda d: -d.score)
        return out

    def close(self) -> None:
        if self._detector is not None:
            with _quiet_native_stderr():
                self._detector.close()
            self._detector = None

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
