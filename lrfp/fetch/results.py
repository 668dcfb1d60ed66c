"""What `lrfp fetch` reports: one VideoResult per manifest row, FetchEvents while it runs, a FetchResult at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from lrfp.fetch.config import DONE, VideoStatus
from lrfp.fetch.models import ResolvedModel


@dataclass
class VideoResult:
    name: str
    url: str
    status: VideoStatus | str
    error: str | None = None
    skipped: bool = False  # not processed in this run (already done, or failed earlier)
    frames_sampled: int = 0
    faces_found: int = 0
    tracks: int = 0
    crops_kept: int = 0
    crops_new: int = 0
    video_s: float = 0.0
    wall_s: float = 0.0


@dataclass(frozen=True)
class FetchEvent:
    """What the CLI shows. kind: 'queued', 'start', 'progress', 'done' (with result) or 'message'."""

    kind: str
    video: str | None = None
    stage: str | None = None  # 'download' or 'frames'
    done: float = 0.0
    total: float | None = None
    message: str | None = None
    result: VideoResult | None = None


Emit = Callable[[FetchEvent], None]


@dataclass
class FetchResult:
    videos: list[VideoResult]
    wall_s: float = 0.0
    interrupted: bool = False
    model: ResolvedModel | None = None

    @property
    def by_status(self) -> Counter:
        return Counter(str(v.status) for v in self.videos)

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.status not in DONE]

    @property
    def all_ok(self) -> bool:
        return not self.interrupted and not self.failed

    def total(self, attr: str) -> float:
        return sum(getattr(v, attr) for v in self.videos)

    @property
    def speed(self) -> float | None:
        """Video-seconds processed per wall-second (this run)."""
        return self.total("video_s") / self.wall_s if self.wall_s > 0 and self.total("video_s") else None
