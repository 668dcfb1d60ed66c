"""Test inputs for `lrfp fetch`: real clips (and copies made from them) served over HTTP on 127.0.0.1.

The HTTP server is the edge of the network: yt-dlp really downloads from it.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

from net_helpers import closed_port, running  # noqa: F401 (closed_port: used by the fetch tests)

from lrfp.fetch.detectors.weights import MODELS

ARCADE_1080 = "facenet-pytorch_video.mp4"
CORRIDOR_GIF = "intel_face-demographics-walking-and-pause.gif"
STAGE_360 = "face_recognition_short_hamilton_clip.mp4"
SLOW_PREFIX = "/slow/"  # files under this path are served at ~SLOW_BYTES_PER_S


def make_media(videos: Path, dest: Path) -> Path:
    """The served folder: links to the shared clips plus copies made here (480p, no faces, truncated, not videos)."""
    import cv2

    dest.mkdir(parents=True, exist_ok=True)
    for name in (ARCADE_1080, CORRIDOR_GIF, STAGE_360):
        (dest / name).symlink_to(videos / name)
    cap = cv2.VideoCapture(str(videos / ARCADE_1080))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w480 = cv2.VideoWriter(str(dest / "arcade480.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (854, 480))
    # The arches above the walkers: real pixels, no face.
    w_none = cv2.VideoWriter(str(dest / "ceiling.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (426, 160))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        small = cv2.resize(frame, (854, 480), interpolation=cv2.INTER_AREA)
        w480.write(small)
        w_none.write(small[0:160, 0:426].copy())
    cap.release()
    w480.release()
    w_none.release()
    data = (videos / ARCADE_1080).read_bytes()
    (dest / "truncated.mp4").write_bytes(data[: len(data) // 4])
    (dest / "notes.txt").write_text("these are notes, not a video\n")
    ok, png = cv2.imencode(".png", _still(dest / "arcade480.mp4"))
    (dest / "still.png").write_bytes(png.tobytes())
    (dest / "page.html").write_text("<!doctype html><html><head><title>x</title></head><body><p>no video here</p></body></html>\n")
    return dest


def _still(video: Path):
    import cv2

    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    return frame


class _Handler(http.server.SimpleHTTPRequestHandler):
    slow_bytes_per_s = 400_000

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def translate_path(self, path: str) -> str:
        if path.startswith(SLOW_PREFIX):
            path = "/" + path[len(SLOW_PREFIX):]
        return super().translate_path(path)

    def copyfile(self, source, outputfile) -> None:  # type: ignore[override]
        if not self.path.startswith(SLOW_PREFIX):
            return super().copyfile(source, outputfile)
        chunk = 32_768
        while True:
            buf = source.read(chunk)
            if not buf:
                return
            outputfile.write(buf)
            time.sleep(chunk / self.slow_bytes_per_s)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # yt-dlp reads the start of a direct link and hangs up: a reset connection is normal here.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """An HTTP server for `folder` on 127.0.0.1 in a thread; yields its base URL."""
    with running(_Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))) as url:
        yield url


def write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    cols = ["url", "id", "title", "start", "end", "license", "notes"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in cols})
    return path


def run_cli(argv: list[str]) -> int:
    """`lrfp ARGV` in this process; returns the exit code."""
    from lrfp.cli import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def cli_subprocess(argv: list[str], **kw) -> subprocess.Popen:
    """`lrfp ARGV` as a real process (for kill and Ctrl-C tests)."""
    env = {**os.environ, "COLUMNS": "200", **kw.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-c", "from lrfp.cli import main; main()", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw,
    )


def fake_wheel(path: Path, shared_models: Path, corrupt: str | None = None, omit: str | None = None) -> Path:
    """A zip laid out like the mediapipe wheel, holding the real model bytes (or corrupt ones)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mediapipe-0.10.21.dist-info/METADATA", "Metadata-Version: 2.1\nName: mediapipe\nVersion: 0.10.21\n")
        zf.writestr("mediapipe-0.10.21.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_28_x86_64\n")
        zf.writestr("mediapipe-0.10.21.dist-info/RECORD", "")
        for name, m in MODELS.items():
            if name == omit:
                continue
            data = (shared_models / m.filename).read_bytes()
            if name == corrupt:
                data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
            zf.writestr(f"mediapipe/modules/face_detection/{m.filename}", data)
    return path


def make_local_index(folder: Path, shared_models: Path) -> Path:
    """A PEP 503 package index (serve it, point PIP_INDEX_URL at BASE/simple) holding a wheel-like zip
    named like the mediapipe 0.10.21 wheel: stands in for PyPI at the edge of the network."""
    import hashlib

    name = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    (folder / "simple" / "mediapipe").mkdir(parents=True)
    fake_wheel(folder / name, shared_models)
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "simple" / "mediapipe" / "index.html").write_text(
        f'<html><body><a href="../../{name}#sha256={digest}">{name}</a></body></html>'
    )
    return folder


def isolate_pip(monkeypatch, index_url: str) -> None:
    """Make `pip download` use only this index: no config files, no extra index, no cache, no retries."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", index_url)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
