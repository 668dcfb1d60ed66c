"""Faces of a video for `lrfp predict`, through `lrfp fetch`'s own stages: download, probe, sample, detect, crop, track.

Every use of lrfp.fetch's internals by `lrfp predict` is in this one module, so that a change of fetch's
detector or layout is followed here only. The stages and settings are fetch's (same defaults: one frame every
0.5 s, BlazeFace full range, faces of at least 20 px with score >= 0.5, a square crop with a 0.25 margin).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.errors import InputError, LrfpError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found: `lrfp fetch`'s options of the same names (lrfp.fetch.pipeline.FetchConfig)."""

    every_s: float = 0.5
    min_face: int = 20
    min_score: float = 0.5
    margin: float = 0.25
    model: str = "full"
    models_dir: Path | None = None
    downscale: bool = False

    def check(self) -> None:
        from lrfp.fetch.models import MODELS

        if not self.every_s > 0:
            raise UsageError(f"--every must be more than 0 seconds (got {self.every_s})")
        if self.min_face < 1:
            raise UsageError(f"--min-face must be at least 1 px (got {self.min_face})")
        if not 0 <= self.min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1 (got {self.min_score})")
        if not 0 <= self.margin <= 2:
            raise UsageError(f"--margin must be between 0 and 2 (got {self.margin})")
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)} (got {self.model!r})")


@dataclass(frozen=True)
class OpenedVideo:
    source: str  # the file or URL as given
    path: Path  # the local file decoded
    width: int  # of the frames as sampled (after any downscale)
    height: int
    fps: float
    duration_s: float | None
    detector: str  # detector name and model file sha256, for the outputs' provenance
    detector_path: Path
    info: Any = None  # lrfp.fetch.frames.VideoInfo, as probed


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h of the detected face, frame pixels
    score: float  # detector score
    square: tuple[int, int, int, int]  # the square crop around it (x, y, side, side)
    crop: Any  # RGB uint8, side x side
    track: int = 0  # 1, 2, ... in order of appearance (fetch's IoU tracker)


@dataclass
class FrameFaces:
    index: int  # decoded frame number
    time_s: float
    image: Any  # BGR frame (for an annotated video)
    faces: list[Face]


@dataclass
class FaceTimes:
    """Seconds spent per stage (wall clock, this process): decode+sample, and detect+crop+track."""

    decode_s: float = 0.0
    detect_s: float = 0.0
    frames: int = 0
    faces: int = 0


def is_url(spec: str) -> bool:
    return "://" in spec


def open_video(spec: str, work_dir: Path, settings: FaceSettings, on_message: Callable[[str], None] | None = None) -> OpenedVideo:
    """A local video file, or a URL downloaded into work_dir (yt-dlp, as `lrfp fetch`); probed with OpenCV.

    Raises InputError (exit 2) for a missing file or one that is not a video, LrfpError for a failed download.
    The detector model is resolved here too (found, or pulled as fetch does), so a missing one fails before work.
    """
    from lrfp.fetch.download import DownloadFailed, DownloadOptions, describe_file, download_video
    from lrfp.fetch.frames import NotAVideo, probe_video
    from lrfp.fetch.models import resolve_model

    settings.check()
    if is_url(spec):
        try:
            got = download_video(spec, Path(work_dir), DownloadOptions(downscale=settings.downscale))
        except DownloadFailed as e:
            raise LrfpError(f"cannot download {spec} ({e.status}): {e}") from e
        path = got.path
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise InputError(f"no such video file: {spec} (give a video file, a URL, or a folder of images)")
    try:
        info = probe_video(path, settings.downscale)
    except NotAVideo as e:
        raise InputError(f"{spec} is not a video: it is {describe_file(path)}; {e}") from e
    model = resolve_model(settings.model, settings.models_dir, on_pull=on_message)
    return OpenedVideo(
        source=spec, path=path, width=info.width, height=info.height, fps=info.fps, duration_s=info.duration_s,
        detector=f"mediapipe-blazeface-{model.model.name} sha256:{model.model.sha256[:12]}", detector_path=model.path,
        info=info,
    )


def video_faces(
    video: OpenedVideo, settings: FaceSettings, times: FaceTimes | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[FrameFaces]:
    """Every sampled frame of the video with its faces (each with its crop and track number), in time order."""
    import cv2

    from lrfp.fetch.crop import cut_crop, square_box
    from lrfp.fetch.detect import FaceDetector
    from lrfp.fetch.frames import sample_frames
    from lrfp.fetch.track import Candidate, IoUTracker

    times = times if times is not None else FaceTimes()
    info = video.info
    tracker = IoUTracker(per_track=1)  # only its track numbers are used here; it keeps no crops for us
    with FaceDetector(video.detector_path, settings.min_score) as detector:
        frames = sample_frames(video.path, info, settings.every_s, should_stop=should_stop)
        try:
            t0 = time.perf_counter()
            for sample, frame in enumerate(frames):
                t1 = time.perf_counter()
                times.decode_s += t1 - t0
                rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                faces: list[Face] = []
                for det in detector.detect(rgb):
                    if min(det.box[2], det.box[3]) < settings.min_face:
                        continue
                    square = square_box(det.box, info.width, info.height, settings.margin)
                    faces.append(Face(tuple(det.box), det.score, square, cut_crop(rgb, square)))
                cands = [Candidate(frame.time_s, frame.index, f.box, f.score, i) for i, f in enumerate(faces)]
                tracker.update(sample, cands)
                for t in tracker.active:
                    for c in t.candidates:
                        if c.frame_index == frame.index:
                            faces[c.payload].track = t.number
                times.frames += 1
                times.faces += len(faces)
                t0 = time.perf_counter()
                times.detect_s += t0 - t1
                yield FrameFaces(frame.index, frame.time_s, frame.image, faces)
                t0 = time.perf_counter()
        finally:
            frames.close()
