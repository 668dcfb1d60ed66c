"""Helpers for the publish tests: a store built by the real `lrfp fetch` from the shared clips, and a
local stand-in for the Hugging Face Hub that records requests.

Both HTTP servers below run on 127.0.0.1 and are the edge of the network, the only thing not real:
yt-dlp really downloads the clips from the first, and huggingface_hub really sends its requests to
the second.
"""

from __future__ import annotations

import contextlib
import http.server
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
from fetch_helpers import serve
from net_helpers import closed_port, running  # noqa: F401 (closed_port: used by the publish tests)

CLIPS = ("intel_face-demographics-walking-and-pause.gif", "face_recognition_short_hamilton_clip.mp4")
CLIP_LICENSES = {"intel": "cc-by-4.0", "hamilton": "mit"}  # as stated in ../shared/data/videos/SOURCE.md


def fetched_video_store(data_dir: Path, shared: Path, smfd_with_mask: Path | None = None):
    """A store filled by the real fetch pipeline (yt-dlp, OpenCV, MediaPipe) from two shared clips, plus labels.

    Nobody in the clips wears a mask, so their crops are labeled without_mask (one is marked unusable, five get
    a blind review). When `smfd_with_mask` is given (a folder with a with_mask/ subfolder), it is imported with a
    license recorded ONLY inside this test store, so that the with_mask class exists; it is never published
    anywhere but the test's tmp folder.
    """
    from lrfp.fetch import FetchConfig, fetch_manifest
    from lrfp.import_folder import ImportConfig, import_folder
    from lrfp.store import open_store

    videos = shared / "data" / "videos"
    with serve(videos) as base:
        manifest = data_dir.parent / "manifest.csv"
        lines = ["url,id,license,title"]
        for name, clip in zip(CLIP_LICENSES, CLIPS):
            lines.append(f"{base}/{clip},{name},{CLIP_LICENSES[name]},{clip}")
        manifest.write_text("\n".join(lines) + "\n")
        result = fetch_manifest(manifest, data_dir, FetchConfig(models_dir=shared / "models"))
    assert result.all_ok, [(v.name, v.status, v.error) for v in result.videos]
    store = open_store(data_dir)
    ids = [r["id"] for r in store.query("SELECT id FROM crops ORDER BY id")]
    for crop_id in ids:
        store.add_label(crop_id, "without_mask", "tester")
    store.add_label(ids[0], "unusable", "tester")
    for crop_id in ids[1:6]:
        store.add_label(crop_id, "without_mask", "reviewer", kind="review")
    if smfd_with_mask is not None:
        import_folder(store, ImportConfig(folder=smfd_with_mask, source="smfd-licensed-in-test",
                                          license="cc-by-4.0", max_side=48))
    return store


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHub:
    """A local server answering the few Hub API calls a dataset push makes, recording each request."""

    requests: list[Recorded] = field(default_factory=list)
    status_for_whoami: int = 200
    remote_files: list[str] = field(default_factory=list)  # files the repo already has (from an earlier push)
    url: str = ""

    def json_bodies(self, method: str, fragment: str) -> list[Any]:
        return [json.loads(r.body or b"null") for r in self.requests if r.method == method and fragment in r.path]


@contextlib.contextmanager
def fake_hub(status_for_whoami: int = 200, remote_files: list[str] | None = None) -> Iterator[FakeHub]:
    hub = FakeHub(status_for_whoami=status_for_whoami, remote_files=list(remote_files or []))

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            hub.requests.append(Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            path = self.path.split("?")[0]
            status, payload = 404, {"error": f"not found: {path}"}
            if path.startswith("/api/whoami"):
                status = hub.status_for_whoami
                payload = ({"name": "tester", "type": "user", "orgs": [], "auth": {"accessToken": {"role": "write"}}}
                           if status == 200 else {"error": "Invalid credentials in Authorization header"})
            elif path == "/api/repos/create":
                req = json.loads(body)
                payload, status = {"url": f"{hub.url}/datasets/{req.get('organization')}/{req['name']}"}, 200
            elif "/tree/" in path:
                status = 200
                payload = [{"type": "file", "path": f, "oid": "2" * 40, "size": 1} for f in hub.remote_files]
            elif path == "/api/validate-yaml":
                status, payload = 200, {"errors": [], "warnings": []}
            elif path.endswith("/settings"):
                status, payload = 200, {}
            elif "/preupload/" in path:
                files = json.loads(body)["files"]
                status = 200
                payload = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                      "oid": None} for f in files], "commitOid": "0" * 40}
            elif "/commit/" in path:
                repo = path.split("/api/datasets/")[1].split("/commit/")[0]
                status, payload = 200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/{'1' * 40}", "commitOid": "1" * 40,
                                        "pullRequestUrl": None}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_HEAD = _answer

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # lrfp's reachability check connects and closes without a request

    server = Server(("127.0.0.1", 0), Handler)
    with running(server) as hub.url:
        yield hub


@pytest.fixture(scope="module")
def video_store(tmp_path_factory, shared_dir: Path):
    """Real fetch of two shared clips (labeled without_mask) + 30 SMFD with_mask images licensed only here."""
    tmp = tmp_path_factory.mktemp("video_store")
    smfd = shared_dir / "data" / "smfd"
    wm = tmp / "wm" / "with_mask"
    wm.mkdir(parents=True)
    for f in sorted(p for p in (smfd / "with_mask").iterdir() if p.name.endswith("-with-mask.jpg"))[:30]:
        (wm / f.name).symlink_to(f)
    store = fetched_video_store(tmp / "data", shared_dir, smfd_with_mask=tmp / "wm")
    from lrfp.split import SplitConfig, grouped_split

    grouped_split(store, SplitConfig(seed=0))
    yield store
    store.close()
