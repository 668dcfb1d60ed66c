"""Face detection on one frame with MediaPipe's Tasks FaceDetector (BlazeFace); closed explicitly.

A process that fetches several videos reuses one detector for all of them (`reused_detector`): creating one
and its first inference cost ~55 ms, a few percent of a minute of video. In IMAGE mode a detector keeps no
state from one call to the next, so a reused detector gives exactly the results of a new one (tested).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
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


# Idle detectors of this process, by (model file, min_score). A video checks one out and gives it back when it
# ends normally; after an error it is closed instead, so a detector that saw an error is never reused.
_idle: dict[tuple[str, float], FaceDetector] = {}
_idle_lock = threading.Lock()


@contextlib.contextmanager
def reused_detector(model_path: Path, min_score: float) -> Iterator[FaceDetector]:
    """A detector for one video: the one this process used for its last video (same model and threshold), else a
    new one. Threads that run at the same time each get their own.

    Whoever runs videos this way closes the idle detectors with `close_idle_detectors()` before the process
    exits (`lrfp fetch` does at the end of a run, and each worker process as it exits): an exit hook would be
    too late, MediaPipe's own dispatcher threads are shut down before `atexit` runs.
    """
    key = (str(model_path), float(min_score))
    with _idle_lock:
        detector = _idle.pop(key, None)
    if detector is None:
        detector = FaceDetector(model_path, min_score)
    try:
        yield detector
    except BaseException:
        detector.close()
        raise
    with _idle_lock:
        if key not in _idle:
            _idle[key], detector = detector, None
    if detector is not None:  # another thread gave one back first
        detector.close()


def close_idle_detectors() -> int:
    """Close this process's idle detectors. Returns how many were closed."""
    with _idle_lock:
        detectors = list(_idle.values())
        _idle.clear()
    for d in detectors:
        d.close()
    return len(detectors)
