"""Download one video below 720p with yt-dlp's Python API, then check with OpenCV that it is a video."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lrfp.fetch.config import MAX_LINES, DownloadOptions, VideoStatus

log = logging.getLogger(__name__)

# Video-only streams first (no audio needed, so no ffmpeg merge); `?` lets direct links with no declared
# height through: those are probed with OpenCV after the download.
FORMAT = f"bv*[height<{MAX_LINES}]/b[height<{MAX_LINES}]/b[height<?{MAX_LINES}]"
# With --downscale a 720p+ video is accepted: the smallest stream with video, resized on decode.
FORMAT_DOWNSCALE = FORMAT + "/wv*/w"

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    title: str | None
    license: str | None
    info: dict[str, Any] = field(default_factory=dict)  # a few provenance fields from yt-dlp


class DownloadFailed(Exception):
    """The URL could not be downloaded. `status` is the store status to record."""

    def __init__(self, status: VideoStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class DownloadStopped(Exception):
    """Raised from the progress hook when the run is being stopped (Ctrl-C)."""


class _YtdlpLogger:
    """yt-dlp's messages go to logging, never to stdout."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)


def download_key(url: str) -> str:
    """The file name stem of a download: a hash of the URL, never an id or title."""
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def ytdlp_options(dest_dir: Path, key: str, opts: DownloadOptions, hook: Callable[[dict], None]) -> dict[str, Any]:
    o: dict[str, Any] = {
        "format": FORMAT_DOWNSCALE if opts.downscale else FORMAT,
        # Highest resolution first; at equal resolution H.264, the cheapest to decode (decoding is most of the work).
        "format_sort": ["res", "vcodec:h264"],
        "outtmpl": {"default": str(dest_dir / f"{key}.%(ext)s")},
        "restrictfilenames": True,
        "windowsfilenames": True,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": _YtdlpLogger(),
        "progress_hooks": [hook],
        "retries": opts.retries,
        "fragment_retries": opts.retries,
        "extractor_retries": opts.retries,
        "socket_timeout": opts.socket_timeout_s,
        "continuedl": True,
        "overwrites": False,
        "color": {"stdout": "never", "stderr": "never"},
    }
    if opts.cookies is not None:
        o["cookiefile"] = str(opts.cookies)
    if opts.cookies_from_browser:
        o["cookiesfrombrowser"] = (opts.cookies_from_browser,)
    if opts.proxy:
        o["proxy"] = opts.proxy
    if opts.sleep_s > 0:
        o["sleep_interval"] = opts.sleep_s
        o["sleep_interval_requests"] = opts.sleep_s
    return o


def download_video(
    url: str, dest_dir: Path, opts: DownloadOptions,
    progress: Callable[[int, int | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Downloaded:
    """Download `url` into dest_dir as `<hash>.<ext>`. Raises DownloadFailed (with a status) or DownloadStopped."""
    import yt_dlp
    from yt_dlp.utils import YoutubeDLError

    dest_dir.mkdir(parents=True, exist_ok=True)

    def hook(d: dict) -> None:
        if should_stop is not None and should_stop():
            raise DownloadStopped("stopped")
        if progress is not None and d.get("status") in ("downloading", "finished"):
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            progress(int(d.get("downloaded_bytes") or 0), int(total) if total else None)

    try:
        with yt_dlp.YoutubeDL(ytdlp_options(dest_dir, download_key(url), opts, hook)) as ydl:
            info = ydl.extract_info(url, download=True)
    except DownloadStopped:
        raise
    except YoutubeDLError as e:
        if should_stop is not None and should_stop():
            raise DownloadStopped("stopped") from e
        raise DownloadFailed(*classify_ytdlp_error(e)) from e
    if info is None:
        raise DownloadFailed(VideoStatus.download_failed, "yt-dlp returned nothing for this URL")
    if info.get("_type") == "playlist":
        raise DownloadFailed(VideoStatus.download_failed, "the URL is a playlist or channel; list its videos one per row")
    files = [d.get("filepath") for d in info.get("requested_downloads") or [] if d.get("filepath")]
    if not files or not Path(files[0]).is_file():
        raise DownloadFailed(VideoStatus.download_failed, "yt-dlp reported success but wrote no file")
    keep = ("id", "extractor", "webpage_url", "uploader", "channel", "upload_date", "format_id", "width",
            "height", "fps", "vcodec", "duration", "license")
    return Downloaded(
        path=Path(files[0]), title=info.get("title"), license=info.get("license"),
        info={k: info.get(k) for k in keep if info.get(k) is not None},
    )


def classify_ytdlp_error(e: Exception) -> tuple[VideoStatus, str]:
    """(status, message) for a yt-dlp error: a page without a video is `not_a_video`."""
    msg = _ANSI_RE.sub("", str(e)).strip()
    msg = re.sub(r"^ERROR:\s*", "", msg)
    msg = re.sub(r"^\[[\w:]+\] [^:]*: ", "", msg)  # "[generic] video: " prefix
    msg = re.sub(r";?\s*please report this issue on .*$", "", msg, flags=re.S)  # yt-dlp's bug-report boilerplate
    msg = re.sub(r" \(caused by .*\)$", "", msg, flags=re.S)
    if msg.startswith("Unsupported URL"):
        return VideoStatus.not_a_video, f"no video found at this URL (yt-dlp: {msg})"
    if "Requested format is not available" in msg:
        return VideoStatus.too_high_res, f"no format below {MAX_LINES}p is offered; rerun with --downscale to accept a larger one"
    return VideoStatus.download_failed, msg


def describe_file(path: Path) -> str:
    """A short guess at what a non-video download is, from its first bytes (for the error message)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
        size = path.stat().st_size
    except OSError:
        return "an unreadable file"
    low = head.lstrip().lower()
    if head.startswith(b"\x89PNG"):
        kind = "a PNG image"
    elif head.startswith(b"\xff\xd8\xff"):
        kind = "a JPEG image"
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        kind = "a GIF image"
    elif low.startswith((b"<!doctype html", b"<html")) or b"<html" in low[:200]:
        kind = "an HTML page"
    elif not head:
        kind = "an empty file"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        kind = "a text file"
    elif b"ftyp" in head[:16]:
        kind = "an MP4/MOV file that does not decode (truncated or corrupt)"
    else:
        kind = "a file of unknown type"
    return f"{kind}, {size:,} bytes"
