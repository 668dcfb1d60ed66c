"""Faces of a video for `lrfp predict`, through `lrfp fetch`'s own stages: download, probe, sample, detect, crop, track.

Every use of lrfp.fetch's internals by `lrfp predict` is in this one module, so that a change of fetch's
detector or layout is followed here only. The stages and settings are fetch's (same defaults: one frame every
0.5 s, tiled BlazeFace, faces of at least 12 px with score >= 0.5, a square crop with a 0.25 margin): the
defaults are read from lrfp.fetch.config.FetchConfig, not repeated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.errors import InputError, LrfpError
from lrfp.fetch.config import FetchConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found: `lrfp fetch`'s options of the same names (lrfp.fetch.pipeline.FetchConfig)."""

    every_s: float = FetchConfig.every_s
    min_face: int = FetchConfig.min_face
    min_score: float = FetchConfig.min_score
    margin: float = FetchConfig.margin
    detector: str = FetchConfig.detector
    tiles: str = FetchConfig.tiles
    models_dir: Path | None = None
    downscale: bool = False

    def check(self) -> None:
        """Raises UsageError (exit 2) for a value fetch would refuse, with fetch's own messages."""
        FetchConfig(every_s=self.every_s, min_face=self.min_face, min_score=self.min_score, margin=self.margin,
                    detector=self.detector, tiles=self.tiles, models_dir=self.models_dir).check()


@dataclass(frozen=True)
class OpenedVideo:
    source: str  # the file or URL as given
    path: Path  # the local file decoded
    width: int  # of the frames as sampled (after any downscale)
    height: int
    fps: float
    duration_s: float | None
    detector: str  # detector name, weights sha256 and tiles, for the outputs' provenance
    resolved: Any  # lrfp.fetch.detect.ResolvedDetector
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
    from lrfp.fetch.detect import FrameTooSmall, check_frame_size, resolve_detector
    from lrfp.fetch.detectors.tiles import parse_tiles

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
    try:
        check_frame_size(info.width, info.height)
    except FrameTooSmall as e:
        raise InputError(f"{spec}: {e}") from e
    model = resolve_detector(settings.detector, parse_tiles(settings.tiles), settings.min_score, settings.models_dir,
                             on_pull=on_message)
    sha = f" sha256:{model.weights_sha256[:12]}" if model.weights_sha256 else ""
    return OpenedVideo(
        source=spec, path=path, width=info.width, height=info.height, fps=info.fps, duration_s=info.duration_s,
        detector=f"{model.name}{sha} tiles {model.settings.tiles}", resolved=model, info=info,
    )


def video_faces(
    video: OpenedVideo, settings: FaceSettings, times: FaceTimes | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[FrameFaces]:
    """Every sampled frame of the video with its faces (each with its crop and track number), in time order."""
    import cv2

    from lrfp.fetch.crop import cut_crop, square_box
    from lrfp.fetch.detect import FrameDetector
    from lrfp.fetch.frames import sample_frames
    from lrfp.fetch.track import Candidate, IoUTracker

    times = times if times is not None else FaceTimes()
    info = video.info
    tracker = IoUTracker(per_track=1)  # only its track numbers are used here; it keeps no crops for us
    with FrameDetector(video.resolved.settings) as detector:
        frames = sample_frames(video.path, info, settings.every_s, should_stop=should_stop)
        try:
            t0 = time.perf_counter()
            for sample, frame in enumerate(frames):
                t1 = time.perf_counter()
                times.decode_s += t1 - t0
                rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                faces: list[Face] = []
                for det in detector.detect_rgb(rgb):
                    # the detector runs at fetch's score floor; the threshold is applied here, as fetch does
                    if det.score < settings.min_score or min(det.box[2], det.box[3]) < settings.min_face:
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


def store_video_faces(
    spec: str, name: str, data_dir: Path, settings: FaceSettings, on_message: Callable[[str], None] | None = None,
) -> tuple[Any, int]:
    """Store a video's faces as `lrfp fetch` does (download for a URL, sample, detect, track, crops with their
    provenance) as source `name` in the store at data_dir (created if missing). Returns (the fetch VideoResult,
    the source id). The caller checks the name first (`check_store_name`)."""
    from lrfp.fetch import FetchConfig as Cfg, fetch_video, process_video_file
    from lrfp.fetch.detect import resolve_detector
    from lrfp.fetch.detectors.tiles import parse_tiles
    from lrfp.manifest import ManifestRow
    from lrfp.store import open_store

    cfg = Cfg(every_s=settings.every_s, min_face=settings.min_face, min_score=settings.min_score,
              margin=settings.margin, detector=settings.detector, tiles=settings.tiles, models_dir=settings.models_dir)
    if settings.downscale:
        from dataclasses import replace

        cfg = replace(cfg, download=replace(cfg.download, downscale=True))
    model = resolve_detector(cfg.detector, parse_tiles(cfg.tiles), cfg.min_score, cfg.models_dir, on_pull=on_message)
    url = spec if is_url(spec) else str(Path(spec).expanduser().resolve())
    row = ManifestRow(line=0, url=url, name=name)
    with open_store(data_dir) as store:
        if is_url(spec):
            res = fetch_video(store, row, cfg, model, lambda e: None)
        else:
            res = process_video_file(store, row, Path(url), cfg, model)
        return res, int(store.source(name)["id"])


def check_store_name(spec: str, name: str, data_dir: Path) -> None:
    """Raises UsageError (a name that breaks the source-name rule) or InputError (the name is already another
    source of the store: an imported folder or another video), before any work."""
    from lrfp.errors import UsageError
    from lrfp.names import NAME_RULE, name_problem
    from lrfp.store import open_store

    problem = name_problem(name)
    if problem is not None:
        raise UsageError(f"--store-as {name!r} {problem}: {NAME_RULE}")
    if not (Path(data_dir).expanduser() / "lrfp.sqlite").exists():
        return
    url = spec if is_url(spec) else str(Path(spec).expanduser().resolve())
    with open_store(data_dir, create=False) as store:
        src = store.find_source(name)
    if src is not None and (src["kind"] != "video" or src["url"] != url):
        what = "an imported folder" if src["kind"] != "video" else f"another video ({src['url']})"
        raise InputError(f"--store-as {name!r}: that source name is already {what} in the store {data_dir}; "
                         "give another name")
