"""Open a video with OpenCV and sample one frame every N seconds, skipping the rest without converting them."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.fetch.config import DOWNSCALE_LINES, too_high_res

log = logging.getLogger(__name__)

# FFmpeg's own messages (e.g. "moov atom not found") would land on the terminal: errors are reported
# through statuses instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")



class NotAVideo(Exception):
    """The file does not decode as a video (the message says what it is instead)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int  # of the frames as sampled (after any downscale)
    height: int
    fps: float
    frame_count: int | None
    duration_s: float | None
    native_width: int
    native_height: int

    @property
    def downscaled(self) -> bool:
        return (self.width, self.height) != (self.native_width, self.native_height)


@dataclass
class DecodeReport:
    """Filled in by sample_frames as it goes: how far the file really decoded."""

    last_time_s: float | None = None  # timestamp of the last frame decoded (grabbed), in seconds
    ended: bool = False  # True when the file ran out of frames (not a stop, not the requested end)


def mp4_tracks(path: Path) -> list[str] | None:
    """The handler types of an MP4/MOV file's tracks ('vide', 'soun', ...), read from its boxes (ISO/IEC
    14496-12: moov > trak > mdia > hdlr); None when the file has no complete moov box (e.g. cut short)."""
    import struct

    def boxes(fh: Any, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        pos = start
        while pos + 8 <= end:
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                return
            size, kind = struct.unpack(">I4s", head)
            body = pos + 8
            if size == 1:
                big = fh.read(8)
                if len(big) < 8:
                    return
                size, body = struct.unpack(">Q", big)[0], pos + 16
            elif size == 0:
                size = end - pos
            if size < 8 or pos + size > end:
                return
            yield kind, body, pos + size
            pos += size

    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            total = fh.tell()
            for kind, body, end in boxes(fh, 0, total):
                if kind != b"moov":
                    continue
                handlers = []
                for k2, b2, e2 in boxes(fh, body, end):
                    if k2 != b"trak":
                        continue
                    for k3, b3, e3 in boxes(fh, b2, e2):
                        if k3 != b"mdia":
                            continue
                        for k4, b4, _e4 in boxes(fh, b3, e3):
                            if k4 == b"hdlr":
                                fh.seek(b4 + 8)  # version/flags, pre_defined
                                handlers.append(fh.read(4).decode("latin-1"))
                return handlers
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class Frame:
    index: int  # decoded frame number from the start of the file
    time_s: float
    image: Any  # BGR numpy array, at VideoInfo.width x height


def open_capture(path: Path, threads: int | None = None) -> Any:
    import cv2

    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, threads]
    # FFmpeg only: the image-sequence backend would accept a PNG as a "video".
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)


def probe_video(path: Path, downscale: bool = False) -> VideoInfo:
    """Open the file and decode its first two frames. Raises NotAVideo if it does not decode as a video."""
    import cv2

    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise NotAVideo("OpenCV (FFmpeg) cannot open it")
        decoded = 0
        for _ in range(2):
            if not cap.grab():
                break
            decoded += 1
        if decoded == 0:
            raise NotAVideo("it opens but no frame decodes")
        if decoded == 1:
            raise NotAVideo("it decodes as a single still image")
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        cap.release()
    if w <= 0 or h <= 0:
        raise NotAVideo("it has no frame size")
    count = int(n) if n and 0 < n < 1e12 else None
    duration = count / fps if count and fps > 0 else None
    out_w, out_h = w, h
    if downscale and too_high_res(w, h):
        out_w, out_h = downscaled_size(w, h)
    return VideoInfo(out_w, out_h, fps, count, duration, w, h)


def downscaled_size(width: int, height: int) -> tuple[int, int]:
    """The frame size --downscale gives a 720p+ video: its shorter side DOWNSCALE_LINES, the other even."""
    k = DOWNSCALE_LINES / min(width, height)
    even = lambda x: int(round(x * k / 2) * 2)  # noqa: E731
    return (DOWNSCALE_LINES, even(height)) if width < height else (even(width), DOWNSCALE_LINES)


def sample_frames(
    path: Path, info: VideoInfo, every_s: float, start_s: float | None = None, end_s: float | None = None,
    *, threads: int | None = None, should_stop: Callable[[], bool] | None = None,
    report: DecodeReport | None = None,
) -> Iterator[Frame]:
    """Yield one frame every `every_s` seconds of video time within [start_s, end_s).

    Frames in between are `grab()`bed (demuxed and decoded only as far as the codec needs) but never
    converted. The container's timestamps are used, so GIFs and variable frame rates sample correctly.
    """
    import cv2

    start = start_s or 0.0
    cap = open_capture(path, threads)
    try:
        if not cap.isOpened():
            raise NotAVideo("OpenCV (FFmpeg) cannot open it")
        index = 0
        if start > 0 and info.fps > 0:
            # Seek close to the start (FFmpeg lands on a keyframe and decodes forward), then confirm.
            target = max(0, int(start * info.fps) - int(info.fps))
            if target > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, target):
                index = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
            else:
                cap.release()
                cap = open_capture(path, threads)
        next_t = start
        fallback_dt = 1.0 / info.fps if info.fps > 0 else 0.04
        last_t = None
        while True:
            if should_stop is not None and index % 16 == 0 and should_stop():
                return
            if not cap.grab():
                if report is not None:
                    report.ended = True
                return
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if last_t is not None and t <= last_t:
                t = last_t + fallback_dt  # no usable timestamps: count frames
            if last_t is None and t < 0:
                t = index * fallback_dt
            last_t = t
            if report is not None:
                report.last_time_s = t
            if end_s is not None and t >= end_s:
                return
            if t + 1e-6 >= next_t:
                ok, image = cap.retrieve()
                if ok and image is not None:
                    if (image.shape[1], image.shape[0]) != (info.width, info.height):
                        image = cv2.resize(image, (info.width, info.height), interpolation=cv2.INTER_AREA)
                    yield Frame(index, round(t, 4), image)
                # The next sample time is on the grid start + k*every, never drifting with frame times.
                k = int((t - start) / every_s + 1e-6) + 1
                next_t = start + k * every_s
            index += 1
    finally:
        cap.release()
