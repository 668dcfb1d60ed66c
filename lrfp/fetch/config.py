"""What `lrfp fetch` is asked to do: its frozen config (checked before any work), the video statuses, and the
resolution rule, each defined once and used by download, frames, the per-video code and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lrfp.errors import InputError, UsageError
from lrfp.fetch.models import MODELS

MAX_LINES = 720
"""Videos must have strictly fewer lines than this (lrfp builds a dataset of low-resolution footage)."""
DOWNSCALE_LINES = 480
"""--downscale resizes the frames of a video of MAX_LINES or more to this many lines."""


def lines(width: int, height: int) -> int:
    """A video's resolution in lines ("480p"): the shorter side of its frame, in pixels."""
    return min(width, height)


def too_high_res(width: int, height: int) -> bool:
    """True for a frame of MAX_LINES lines or more (720p and up), portrait or landscape."""
    return lines(width, height) >= MAX_LINES


class VideoStatus(StrEnum):
    """The status of a video source in the store (a plain string there)."""

    ok = "ok"  # crops stored
    no_faces = "no_faces"  # decoded to the end, no face kept
    download_failed = "download_failed"
    not_a_video = "not_a_video"  # the URL served something that does not decode as a video
    too_high_res = "too_high_res"  # 720p or more without --downscale
    bad_range = "bad_range"  # start/end outside the video
    live_stream = "live_stream"  # a live stream has no end: refused up front
    truncated = "truncated"  # decodes to well short of the length its container or yt-dlp declared
    error = "error"  # anything else (the message says what)
    pending = "pending"  # planned, not started
    running = "running"  # being processed (or killed while it was)
    interrupted = "interrupted"  # stopped by the user


DONE = frozenset({VideoStatus.ok, VideoStatus.no_faces})
"""Final statuses: a rerun skips these videos."""
FAILED = frozenset({
    VideoStatus.download_failed, VideoStatus.not_a_video, VideoStatus.too_high_res, VideoStatus.bad_range,
    VideoStatus.live_stream, VideoStatus.truncated, VideoStatus.error,
})
"""Failed statuses: a rerun skips them unless --retry-failed."""


@dataclass(frozen=True)
class DownloadOptions:
    """yt-dlp pass-through options users need (e.g. against YouTube's bot check)."""

    cookies: Path | None = None
    cookies_from_browser: str | None = None
    sleep_s: float = 0.0
    retries: int = 3
    socket_timeout_s: float = 30.0
    downscale: bool = False
    proxy: str | None = None


@dataclass(frozen=True)
class FetchConfig:
    every_s: float = 0.5
    min_face: int = 20
    min_score: float = 0.5
    margin: float = 0.25
    per_track: int = 3
    model: str = "full"
    models_dir: Path | None = None
    workers: int = 1
    retry_failed: bool = False
    keep_videos: bool = False
    download: DownloadOptions = field(default_factory=DownloadOptions)

    def check(self) -> None:
        """Raises UsageError (a bad value) or InputError (a missing file) before any work is done."""
        if not self.every_s > 0:
            raise UsageError(f"--every must be more than 0 seconds (got {self.every_s})")
        if self.min_face < 1:
            raise UsageError(f"--min-face must be at least 1 px (got {self.min_face})")
        if not 0 <= self.min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1 (got {self.min_score})")
        if not 0 <= self.margin <= 2:
            raise UsageError(f"--margin must be between 0 and 2 (got {self.margin})")
        if self.per_track < 1:
            raise UsageError(f"--per-track must be at least 1 (got {self.per_track})")
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)} (got {self.model!r})")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        if self.download.cookies is not None and not Path(self.download.cookies).is_file():
            raise InputError(f"cookies file {self.download.cookies} does not exist")
