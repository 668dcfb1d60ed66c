"""Read and validate a fetch manifest (CSV of video URLs) into typed rows, reporting every bad row."""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from lrfp.csvfile import detect_separator, parse_csv, read_csv_text
from lrfp.errors import ManifestError
from lrfp.names import NAME_RE, NAME_RULE
from lrfp.paths import check_input_file

COLUMNS = ("url", "id", "title", "city", "place", "recorded", "license", "start", "end", "notes")
"""Known columns; only `url` is required. Other columns are kept as extras in the source's meta."""

ID_RE = NAME_RE  # the shared rule (lrfp.names): a source name is used in paths
_SLUG_RE = re.compile(r"[^A-Za-z0-9]+")
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be", "music.youtube.com"}


@dataclass(frozen=True)
class ManifestRow:
    """One video to fetch. `name` is the source name in the store: the `id` column or one derived from the URL."""

    line: int
    url: str
    name: str
    title: str | None = None
    city: str | None = None
    place: str | None = None
    recorded: str | None = None
    license: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    notes: str | None = None
    extras: dict[str, str] = field(default_factory=dict)

    def meta(self) -> dict[str, object]:
        """What the manifest says about the video beyond url/title/license, for the source's meta."""
        m: dict[str, object] = {
            k: v for k, v in (("city", self.city), ("place", self.place), ("recorded", self.recorded),
                              ("notes", self.notes), ("start_s", self.start_s), ("end_s", self.end_s))
            if v is not None
        }
        if self.extras:
            m["extras"] = dict(self.extras)
        return m


def parse_seconds(text: str) -> float:
    """`90`, `90.5`, `1:30` or `1:02:03` -> seconds. Raises ValueError with a reason."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
        raise ValueError
    values = [float(p) for p in parts]
    if any(v < 0 or v != v or v == float("inf") for v in values):
        raise ValueError
    if len(values) > 1 and any(v >= 60 for v in values[1:]):
        raise ValueError
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def source_name_for_url(url: str) -> str:
    """A stable, path-safe source name from a URL: `youtube-<video id>`, else `<file stem>-<hash8>`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in _YOUTUBE_HOSTS:
        vid = parse_qs(parts.query).get("v", [None])[0] if host != "youtu.be" else parts.path.strip("/")
        if vid and re.fullmatch(r"[A-Za-z0-9_-]{6,20}", vid):
            return f"youtube-{vid}"
    stem = Path(parts.path).stem or host or "video"
    slug = _SLUG_RE.sub("-", stem).strip("-")[:40] or "video"
    return f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def read_manifest(path: Path) -> list[ManifestRow]:
    """Read a manifest CSV (comma-, semicolon- or tab-separated: csvfile.detect_separator). Raises ManifestError
    listing every bad row as `FILE:LINE: reason`."""
    check_input_file(path, "manifest")
    try:
        text = read_csv_text(path, "manifest")
    except ValueError as e:
        raise ManifestError(str(e)) from e
    text = blank_comment_lines(text)
    records, errors = parse_csv(path, text)
    if not records:
        if errors:
            raise ManifestError(f"{len(errors)} bad row(s) in the manifest, nothing was downloaded:\n" + "\n".join(errors))
        raise ManifestError(f"{path}: the manifest is empty; it needs a header line with a `url` column")
    if records[0].line != 1 and errors and errors[0].startswith(f"{path}:1:"):
        raise ManifestError(errors[0])
    header = records[0].fields
    separator_name = {",": "commas", ";": "semicolons", "\t": "tabs"}[detect_separator(text)]
    columns = [h.strip().lower() for h in header]
    if "url" not in columns:
        shown = ", ".join(h if h.isprintable() else repr(h) for h in columns if h) or "none"
        raise ManifestError(f"{path}:{records[0].line}: no `url` column in the header (columns: {shown})")
    dup_cols = sorted({c for c in columns if c and columns.count(c) > 1})
    if dup_cols:
        raise ManifestError(f"{path}:{records[0].line}: column(s) named twice in the header: {', '.join(dup_cols)}")

    rows: list[ManifestRow] = []
    seen_urls: dict[str, int] = {}
    seen_names: dict[str, int] = {}
    for rec in records[1:]:
        record, line = rec.fields, rec.line
        if len(record) > len(columns):
            errors.append(f"{path}:{line}: {len(record)} fields but the header has {len(columns)} "
                          f"(quote fields that contain {separator_name})")
            continue
        values = {c: (record[i].strip() if i < len(record) else "") for i, c in enumerate(columns) if c}
        row, reasons = _parse_row(values, line)
        for reason in reasons:
            errors.append(f"{path}:{line}: {reason}")
        if row is None:
            continue
        if row.url in seen_urls:
            errors.append(f"{path}:{line}: duplicate url {row.url} (first at line {seen_urls[row.url]})")
            continue
        seen_urls[row.url] = line
        if row.name in seen_names:
            errors.append(f"{path}:{line}: duplicate id {row.name!r} (first at line {seen_names[row.name]})")
            continue
        seen_names[row.name] = line
        if not reasons:
            rows.append(row)
    errors.sort(key=_line_of)
    if errors:
        raise ManifestError(f"{len(errors)} bad row(s) in the manifest, nothing was downloaded:\n" + "\n".join(errors))
    if not rows:
        raise ManifestError(f"{path}: the manifest has a header but no rows")
    return rows


COMMENT = "#"
"""A manifest line whose first non-blank character is this is a comment (skipped, as pandas' `comment=` and many
CSV tools do); no URL starts with it."""


def blank_comment_lines(text: str) -> str:
    """`text` with each comment line (COMMENT) emptied, so that line numbers stay those of the file."""
    return "".join("\n" if line.lstrip().startswith(COMMENT) else line for line in text.splitlines(keepends=True))


def url_fault(url: str) -> str | None:
    """Why `url` cannot be fetched (None if it can): a scheme other than http(s), no host, a port that is not a
    number from 1 to 65535, a malformed IPv6 address, whitespace. urllib.parse is the rule: urlsplit and its
    `.port` raise ValueError for what it cannot read (yt-dlp splits URLs with it too)."""
    if any(ch.isspace() for ch in url):
        return f"url contains whitespace: {url!r}"
    if not url.isprintable():  # a control character (ESC, NUL...) would act on the terminal that shows the message
        return f"url contains a control character: {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"malformed url ({e}): {url}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"its scheme is {scheme}:" if scheme else "it has no scheme"
        return f"only http:// and https:// URLs can be fetched; {shown} ({url})"
    if not parts.hostname:
        return f"url has no host: {url}"
    if port == 0:
        return f"malformed url (port 0 is not a port a server listens on): {url}"
    return None


def _line_of(error: str) -> int:
    """The LINE of a `FILE:LINE: reason` message, to list errors in file order."""
    head = error.split(": ", 1)[0]
    try:
        return int(head.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def _parse_row(values: dict[str, str], line: int) -> tuple[ManifestRow | None, list[str]]:
    reasons: list[str] = []
    url = values.get("url", "")
    if not url:
        return None, ["empty url"]
    if (fault := url_fault(url)) is not None:
        return None, [fault]

    given_id = values.get("id", "")
    if given_id and not ID_RE.fullmatch(given_id):
        reasons.append(
            f"id {given_id!r} is not allowed: {NAME_RULE}"
        )
    start = end = None
    for key in ("start", "end"):
        raw = values.get(key, "")
        if not raw:
            continue
        try:
            seconds = parse_seconds(raw)
        except ValueError:
            reasons.append(f"bad {key} {raw!r}: expected seconds (e.g. 90 or 90.5) or m:ss / h:mm:ss")
            continue
        if key == "start":
            start = seconds
        else:
            end = seconds
    if end is not None and end <= (start or 0.0):  # an empty start is 0 (the video's beginning)
        reasons.append(f"end ({values['end']}) must be after start ({values.get('start') or '0, the default'})")
    recorded = values.get("recorded", "") or None
    if recorded is not None and not _valid_date(recorded):
        reasons.append(f"bad recorded date {recorded!r}: expected YYYY-MM-DD (or YYYY-MM, YYYY)")
    extras = {k: v for k, v in values.items() if k not in COLUMNS and v}
    row = ManifestRow(
        line=line, url=url, name=given_id if given_id and ID_RE.fullmatch(given_id) else source_name_for_url(url),
        title=values.get("title") or None, city=values.get("city") or None, place=values.get("place") or None,
        recorded=recorded, license=values.get("license") or None, start_s=start, end_s=end,
        notes=values.get("notes") or None, extras=extras,
    )
    return row, reasons


def _valid_date(text: str) -> bool:
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            _dt.datetime.strptime(text, fmt)
            return True
        except ValueError:
            continue
    return False
