"""What `lrfp fetch` is asked to do: its frozen config (checked before any work), the video statuses, and the
resolution rule, each defined once and used by download, frames, the per-video code and the CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lrfp.errors import InputError, UsageError
from lrfp.fetch.detectors import DEFAULT_DETECTOR
from lrfp.fetch.detectors.weights import MODELS, REMOVED

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
    duplicate = "duplicate"  # the same footage as another source, whose crops they are (video.same_footage)
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


ROW_SETTINGS = ("start_s", "end_s")
"""The manifest columns a video's crops depend on (compared with the source's meta 'manifest'). Every other
column (title, license, city, place, recorded, notes, extras) is descriptive: a rerun records a change of it
without reprocessing the video (pipeline.plan)."""


def changed_settings(stored_meta: dict[str, Any], current: dict[str, Any], row_meta: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{setting: (stored, now)} for each setting a stored video was made with (its meta 'settings' and the
    manifest row's start/end in meta 'manifest') that differs from this run's `current` settings. A setting
    the store does not record (an older lrfp) or that this run leaves open (None) is not compared."""
    stored = stored_meta.get("settings")
    if not stored:
        return {}
    # --downscale changes the crops only of a video whose frames it resized (meta 'downscale'); a store of an
    # older lrfp that did not record the option tells it by that entry too.
    stored = {**stored, "downscale": bool(stored_meta.get("downscale"))}
    if "downscale" in current and not stored_meta.get("downscale"):
        current = {k: v for k, v in current.items() if k != "downscale"}  # frames not resized: the option changed nothing
    diffs = {k: (stored[k], now) for k, now in current.items() if now is not None and k in stored and stored[k] != now}
    made_with = stored_meta.get("manifest") or {}
    for key in ROW_SETTINGS:
        if made_with.get(key) != row_meta.get(key):
            diffs[key] = (made_with.get(key), row_meta.get(key))
    return diffs


DONE = frozenset({VideoStatus.ok, VideoStatus.no_faces, VideoStatus.duplicate})
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

    def check(self) -> None:
        """Raises UsageError or InputError for an option yt-dlp would only trip over per video (each row
        would then be stored as download_failed and skipped by the next run)."""
        if self.retries < 0:
            raise UsageError(f"--retries must be 0 or more (got {self.retries})")
        if not 0 <= self.sleep_s < math.inf:
            raise UsageError(f"--sleep must be 0 or more seconds (got {self.sleep_s})")
        if self.proxy is not None:
            check_proxy(self.proxy)
        if self.cookies is not None and self.cookies_from_browser:
            raise UsageError("--cookies and --cookies-from-browser cannot be used together; give one of them")
        if self.cookies is not None:
            check_cookies_file(Path(self.cookies))
        if self.cookies_from_browser is not None:
            check_browser(self.cookies_from_browser)


PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")
"""The proxy URL schemes yt-dlp supports (its --proxy help)."""


def check_proxy(proxy: str) -> None:
    """A proxy must be a URL with a scheme and a host, e.g. socks5://127.0.0.1:1080 (UsageError)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018  raises ValueError for a port that is not a number
    except ValueError as e:
        raise UsageError(f"--proxy {proxy!r} is not a URL ({e}); give e.g. socks5://127.0.0.1:1080") from e
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise UsageError(
            f"--proxy {proxy!r} is not a proxy URL: give SCHEME://HOST[:PORT] with SCHEME one of "
            f"{', '.join(PROXY_SCHEMES)} (e.g. socks5://127.0.0.1:1080)"
        )


def check_cookies_file(path: Path) -> None:
    """The cookies file must exist and be in Netscape format, read by yt-dlp's own cookie jar (InputError)."""
    import contextlib
    import http.cookiejar
    import io

    if path.is_dir():
        raise InputError(f"cookies file {path} is a folder; give the cookies.txt file itself")
    if not path.is_file():
        raise InputError(f"cookies file {path} does not exist")
    from yt_dlp.cookies import YoutubeDLCookieJar

    said = io.StringIO()  # yt-dlp writes a warning for each line it skips
    try:
        with contextlib.redirect_stderr(said):
            YoutubeDLCookieJar(str(path)).load()
    except PermissionError as e:
        raise InputError(f"cookies file {path} cannot be read ({e.strerror}); check its permissions") from e
    except (http.cookiejar.LoadError, OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"cookies file {path} is not in Netscape format ({e}); export it with a "
                         "cookies.txt browser extension, or use --cookies-from-browser") from e
    skipped = [line for line in said.getvalue().splitlines() if "skipping cookie file entry" in line]
    if skipped:
        raise InputError(f"cookies file {path} is not in Netscape format: {len(skipped)} line(s) are not "
                         "7 tab-separated fields; export it with a cookies.txt browser extension")


def parse_browser_spec(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """--cookies-from-browser BROWSER[+KEYRING][:PROFILE][::CONTAINER] -> (browser, profile, keyring, container),
    the tuple yt-dlp's `cookiesfrombrowser` option takes (its CLI splits the text the same way). Raises UsageError
    for a browser or keyring yt-dlp does not support."""
    import re

    from yt_dlp.cookies import SUPPORTED_BROWSERS, SUPPORTED_KEYRINGS

    # yt-dlp's own pattern (yt_dlp/__init__.py, validate_options), so a spec means here what it means to yt-dlp:
    # 'firefox::Personal' is container Personal, no profile.
    m = re.fullmatch(r"""(?x)
        (?P<browser>[^+:]+)
        (?:\s*\+\s*(?P<keyring>[^:]+))?
        (?:\s*:\s*(?!:)(?P<profile>.+?))?
        (?:\s*::\s*(?P<container>.+))?
    """, spec)
    if m is None:
        raise UsageError(f"--cookies-from-browser {spec!r}: not BROWSER[+KEYRING][:PROFILE][::CONTAINER] "
                         "(e.g. firefox, chrome+gnomekeyring:Default, firefox::Personal)")
    browser = m.group("browser").lower()
    if browser not in SUPPORTED_BROWSERS:
        raise UsageError(f"--cookies-from-browser {spec!r}: unknown browser {browser or spec!r}; "
                         f"yt-dlp supports {', '.join(sorted(SUPPORTED_BROWSERS))}")
    keyring = m.group("keyring")
    if keyring and keyring.upper() not in SUPPORTED_KEYRINGS:
        raise UsageError(f"--cookies-from-browser {spec!r}: unknown keyring {keyring!r}; "
                         f"yt-dlp supports {', '.join(sorted(SUPPORTED_KEYRINGS))}")
    return browser, m.group("profile"), keyring.upper() if keyring else None, m.group("container")


def check_browser(spec: str) -> None:
    """--cookies-from-browser must name a browser (and keyring) that yt-dlp supports (UsageError), and yt-dlp must
    be able to load that browser's cookies here -- its profile exists, its database reads (InputError): once, up
    front, with yt-dlp's own loader, instead of every video failing the same way."""
    import contextlib
    import io

    from yt_dlp.cookies import YDLLogger, extract_cookies_from_browser

    browser, profile, keyring, container = parse_browser_spec(spec)

    class _Quiet(YDLLogger):  # yt-dlp's messages while loading ("Extracting cookies from firefox") are not ours
        def debug(self, message: str) -> None: ...
        def info(self, message: str) -> None: ...
        def warning(self, message: str, only_once: bool = False) -> None: ...
        def error(self, message: str) -> None: ...

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            extract_cookies_from_browser(browser, profile, _Quiet(), keyring=keyring, container=container)
    except Exception as e:  # noqa: BLE001 - yt-dlp raises FileNotFoundError, ValueError, sqlite3 and keyring errors
        raise InputError(f"--cookies-from-browser {spec!r}: yt-dlp cannot load {browser}'s cookies here ({e}); "
                         f"log in with {browser} on this machine (as this user) first, name the profile "
                         f"(BROWSER:PROFILE), or export a cookies.txt and use --cookies FILE") from e


@dataclass(frozen=True)
class FetchConfig:
    every_s: float = 0.5
    min_face: int = 12  # box side, px: a labeler can still tell a covered nose and mouth (docs/detectors.md)
    min_score: float = 0.5
    margin: float = 0.25
    per_track: int = 3
    model: str = "full"  # the BlazeFace weights (only "full" since the short-range model was removed)
    detector: str = DEFAULT_DETECTOR
    tiles: str = "auto"  # auto | off | COLSxROWS (lrfp.fetch.detectors.tiles)
    models_dir: Path | None = None
    workers: int = 1
    retry_failed: bool = False
    redo: bool = False  # reprocess videos done earlier with other settings (see pipeline.plan)
    keep_videos: bool = False
    download: DownloadOptions = field(default_factory=DownloadOptions)

    def check(self) -> None:
        """Raises UsageError (a bad value) or InputError (a missing file) before any work is done."""
        if not 0 < self.every_s < math.inf:
            raise UsageError(f"--every must be more than 0 seconds (got {self.every_s})")
        if self.min_face < 1:
            raise UsageError(f"--min-face must be at least 1 px (got {self.min_face})")
        if not 0 <= self.min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1 (got {self.min_score})")
        if not 0 <= self.margin <= 2:
            raise UsageError(f"--margin must be between 0 and 2 (got {self.margin})")
        if self.per_track < 1:
            raise UsageError(f"--per-track must be at least 1 (got {self.per_track})")
        if self.model in REMOVED:
            raise UsageError(REMOVED[self.model])
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)} (got {self.model!r})")
        from lrfp.fetch.detectors import check_available
        from lrfp.fetch.detectors.tiles import parse_tiles

        check_available(self.detector)  # UsageError (unknown) or DetectorUnavailable (package missing), exit 2
        parse_tiles(self.tiles)
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        from lrfp.fetch.detectors.weights import check_models_dirs

        check_models_dirs(self.models_dir)  # --models-dir and LRFP_MODELS_DIR: InputError saying what they are instead
        self.download.check()
