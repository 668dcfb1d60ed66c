"""What `lrfp fetch` reports: one VideoResult per manifest row, FetchEvents while it runs, a FetchResult at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from lrfp.fetch.config import DONE, VideoStatus
from lrfp.fetch.detect import ResolvedDetector


DNS_ERRORS = ("Name or service not known", "Temporary failure in name resolution", "nodename nor servname provided",
              "No address associated with hostname", "getaddrinfo failed")
"""What the OS's resolver says (glibc, macOS, Windows) when a host name cannot be looked up."""


CONNECTION_ERRORS = ("Connection refused", "timed out", "Network is unreachable", "No route to host",
                     "Connection reset", "Unable to connect to proxy", "ProxyError")
"""What a download says when it reached no server at all (the machine, its network or its proxy)."""


def dns_failure(error: str | None) -> bool:
    return bool(error) and any(m in error for m in DNS_ERRORS)


def connection_failure(error: str | None) -> bool:
    return dns_failure(error) or (bool(error) and any(m in error for m in CONNECTION_ERRORS))


@dataclass
class VideoResult:
    name: str
    url: str
    status: VideoStatus | str
    error: str | None = None
    skipped: bool = False  # not processed in this run (already done, or failed earlier)
    frames_sampled: int = 0
    faces_found: int = 0  # kept by the filters below
    dropped_min_score: int = 0  # detections scored SCORE_FLOOR..--min-score
    dropped_min_face: int = 0  # detections with a box side under --min-face
    tracks: int = 0
    crops_kept: int = 0
    crops_new: int = 0
    crops_others: int = 0  # of the crops kept, those already stored as another source's (same footage)
    crops_removed: int = 0  # crops of an earlier run with other settings that this run did not produce
    labeled_kept: int = 0  # of those, kept because a person labeled them or a split holds them
    changed: dict[str, tuple[Any, Any]] | None = None  # stored with other settings: {setting: (stored, now)}
    described: list[str] | None = None  # skipped, but these descriptive columns (license, title, ...) were recorded
    url_was: str | None = None  # the source took the manifest's new URL in this run (it owned no crop): the old one
    kept_earlier: str | None = None  # a redo failed: the earlier run's status it kept (with its settings and crops)
    video_s: float = 0.0
    wall_s: float = 0.0

    def dropped(self) -> dict[str, int]:
        """How many detections each filter threw away: {"min_score": n, "min_face": n}."""
        return {"min_score": self.dropped_min_score, "min_face": self.dropped_min_face}


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
    model: ResolvedDetector | None = None

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
    def stale(self) -> list[VideoResult]:
        """Videos done earlier with other settings and skipped (rerun with --redo to reprocess them)."""
        return [v for v in self.videos if v.skipped and v.changed]

    def recorded(self, column: str) -> list[VideoResult]:
        """Videos skipped whose manifest `column` (e.g. 'license') this run recorded without reprocessing."""
        return [v for v in self.videos if v.described and column in v.described]

    @property
    def offline(self) -> bool:
        """True when every download attempted in this run failed to look up its host name (DNS): the machine
        seems to be offline, rather than each URL being bad. One video downloaded (even from a local server, or
        failing later on as not_a_video) and this is False: see `dns_failed`."""
        return self._all_failed(dns_failure)

    @property
    def unreachable(self) -> bool:
        """True when every download attempted in this run reached no server (refused, timed out, no DNS)."""
        return self._all_failed(connection_failure)

    @property
    def dns_failed(self) -> list[VideoResult]:
        """The videos of this run whose download failed to look up its host name."""
        return [v for v in self._attempted() if v.status == VideoStatus.download_failed and dns_failure(v.error)]

    def _attempted(self) -> list[VideoResult]:
        """The videos this run tried to download (not skipped; an interrupted one is left out: it may not have
        reached the network yet)."""
        return [v for v in self.videos if not v.skipped and v.status != VideoStatus.interrupted]

    def _all_failed(self, why: Callable[[str | None], bool]) -> bool:
        ran = self._attempted()
        return len(ran) > 0 and all(v.status == VideoStatus.download_failed and why(v.error) for v in ran)

    @property
    def speed(self) -> float | None:
        """Video-seconds processed per wall-second (this run)."""
        return self.total("video_s") / self.wall_s if self.wall_s > 0 and self.total("video_s") else None
