"""Download one video below 720p with yt-dlp's Python API, then check with OpenCV that it is a video."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lrfp.fetch.config import MAX_LINES, DownloadOptions, VideoStatus, parse_browser_spec, too_high_res
from lrfp.fetch.frames import mp4_tracks

log = logging.getLogger(__name__)

LIVE = ("is_live", "is_upcoming")
"""yt-dlp live_status values of a stream that has no end yet (an HLS playlist without #EXT-X-ENDLIST is one)."""

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


def fits(fmt: dict[str, Any]) -> bool:
    """Whether a yt-dlp format is below MAX_LINES lines (config.lines: the shorter side, so that portrait
    480x854 fits). A format that declares no size fits: the file is probed after the download."""
    w, h = fmt.get("width"), fmt.get("height")
    if w and h:
        return not too_high_res(int(w), int(h))
    return not (h and h >= MAX_LINES)  # height only: the common landscape case (yt-dlp's own `[height<720]`)


def format_selector(downscale: bool) -> Callable[[dict[str, Any]], Any]:
    """yt-dlp's `format` as a function: the best stream with video (video-only needs no ffmpeg merge) below
    MAX_LINES lines; with --downscale, if none is, the smallest stream with video (resized on decode).
    yt-dlp hands the formats sorted worst to best by `format_sort`; none chosen -> "Requested format is not available"."""

    def select(ctx: dict[str, Any]):
        video = [f for f in ctx["formats"] if f.get("vcodec") != "none"]
        below = [f for f in video if fits(f)]
        if below:
            yield below[-1]
        elif downscale and video:
            yield video[0]

    return select


def ytdlp_options(dest_dir: Path, key: str, opts: DownloadOptions, hook: Callable[[dict], None],
                  on_live: Callable[[str], None] | None = None) -> dict[str, Any]:
    def refuse_live(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        if info.get("is_live") or info.get("live_status") in LIVE:
            if on_live is not None:
                on_live(info.get("live_status") or "is_live")
            return "a live stream"  # yt-dlp skips it
        return None

    o: dict[str, Any] = {
        "format": format_selector(opts.downscale),
        # Highest resolution (yt-dlp's `res`: the shorter side) first; at equal resolution H.264, the cheapest
        # to decode (decoding is most of the work).
        "format_sort": ["res", "vcodec:h264"],
        "match_filter": refuse_live,
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
        o["cookiesfrombrowser"] = parse_browser_spec(opts.cookies_from_browser)  # a tuple, as yt-dlp's CLI gives it
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
    """Download `url` into dest_dir as `<hash>.<ext>`. Raises DownloadFailed (with a status) or DownloadStopped.

    yt-dlp runs in a thread of its own and this function polls `should_stop` every 0.1 s, so a stop ends the
    wait at once even while yt-dlp is blocked on a stalled socket (its timeout is opts.socket_timeout_s, and
    it retries). The abandoned thread is a daemon: it ends with its socket's timeout or with the process.
    """
    import threading

    dest_dir.mkdir(parents=True, exist_ok=True)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = _download(url, dest_dir, opts, progress, should_stop)
        except BaseException as e:  # handed to the waiting thread
            outcome["error"] = e

    thread = threading.Thread(target=work, name=f"lrfp-download-{download_key(url)}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if should_stop is not None and should_stop() and thread.is_alive():
            raise DownloadStopped("stopped")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _download(url: str, dest_dir: Path, opts: DownloadOptions, progress: Callable[[int, int | None], None] | None,
              should_stop: Callable[[], bool] | None) -> Downloaded:
    import yt_dlp
    from yt_dlp.utils import YoutubeDLError

    live: list[str] = []

    def hook(d: dict) -> None:
        if should_stop is not None and should_stop():
            raise DownloadStopped("stopped")
        if progress is not None and d.get("status") in ("downloading", "finished"):
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            progress(int(d.get("downloaded_bytes") or 0), int(total) if total else None)

    try:
        with yt_dlp.YoutubeDL(ytdlp_options(dest_dir, download_key(url), opts, hook, live.append)) as ydl:
            info = ydl.extract_info(url, download=True)
    except DownloadStopped:
        raise
    except YoutubeDLError as e:
        if should_stop is not None and should_stop():
            raise DownloadStopped("stopped") from e
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            raise  # not this URL's fault: the caller ends the run (see lrfp.errors.disk_full)
        raise DownloadFailed(*classify_ytdlp_error(e)) from e
    if live:
        what = "an upcoming live stream" if live[0] == "is_upcoming" else "a live stream (it has no end yet)"
        raise DownloadFailed(VideoStatus.live_stream, f"{what}: lrfp fetches recorded videos only; "
                             "give the URL of the recording once the stream has ended")
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
        tracks = mp4_tracks(path)
        if tracks is None:
            kind = "an MP4/MOV file that does not decode (truncated or corrupt)"
        elif "vide" not in tracks:
            what = "audio only" if tracks and set(tracks) <= {"soun"} else f"tracks: {', '.join(tracks) or 'none'}"
            kind = f"an MP4/MOV file that has no video stream ({what})"
        else:
            kind = "an MP4/MOV file whose video stream does not decode (corrupt or an unsupported codec)"
    elif head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        kind = "an MP3 audio file (no video stream)"
    elif head.startswith(b"OggS"):
        kind = "an Ogg file that does not decode as video (audio only?)"
    elif head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        kind = "a WAV audio file (no video stream)"
    elif head.startswith(b"fLaC"):
        kind = "a FLAC audio file (no video stream)"
    else:
        kind = "a file of unknown type"
    return f"{kind}, {size:,} bytes"
