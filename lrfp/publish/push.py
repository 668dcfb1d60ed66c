"""Upload a published folder to the Hugging Face Hub: checks first (repo id, token, network), then push.

The token comes from HF_TOKEN or the user's `hf auth login`; lrfp passes it to huggingface_hub
and never prints, logs or writes it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from lrfp.errors import PublishError, PublishInputError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PushConfig:
    repo_id: str
    private: bool = False
    gated: bool = False
    endpoint: str | None = None  # None: HF_ENDPOINT, else the public Hub
    connect_timeout_s: float = 5.0

    @property
    def hub(self) -> str:
        return (self.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def check_repo_id(repo_id: str) -> None:
    bad = (
        not _REPO_ID.match(repo_id) or len(repo_id) > 96 or "--" in repo_id or ".." in repo_id
        or repo_id.endswith(".git") or repo_id.endswith(".")
    )
    if bad:
        raise PublishInputError(
            f"--repo-id {repo_id!r} is not a Hub dataset id: expected USER/NAME made of letters, digits, "
            "'-', '_' and '.', e.g. jdoe/low-res-faces-peru"
        )


def find_token() -> str:
    """The user's Hub token (HF_TOKEN, else the one `hf auth login` stored), or a PublishError."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` first "
            "(lrfp only passes the token to huggingface_hub; it never prints or stores it)"
        )
    return token


def check_reachable(cfg: PushConfig) -> None:
    """Fail within seconds, not after a long export, when the Hub cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise PublishError("cannot push: HF_HUB_OFFLINE is set (offline mode); unset it to publish to the Hub")
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")):
        return  # behind a proxy a direct connection may fail while the Hub works: let huggingface_hub try
    url = urlparse(cfg.hub)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        raise PublishInputError(f"cannot push: HF_ENDPOINT {cfg.hub!r} is not a URL")
    try:
        socket.create_connection((host, port), timeout=cfg.connect_timeout_s).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise PublishError(
            f"cannot reach the Hugging Face Hub at {cfg.hub} ({reason}): check your network connection; "
            "nothing was uploaded"
        ) from None


def check_ready(cfg: PushConfig) -> str:
    """Everything that can be checked before the export: repo id, token, network. Returns the token."""
    check_repo_id(cfg.repo_id)
    token = find_token()
    check_reachable(cfg)
    return token


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx", "requests"):  # whichever HTTP client this huggingface_hub uses
        try:
            module = __import__(name)
        except ImportError:
            continue
        base = getattr(module, "TransportError", None) or getattr(getattr(module, "exceptions", None), "ConnectionError", None)
        if base is not None:
            errors.append(base)
    return tuple(errors)


def push_to_hub(folder: Path, cfg: PushConfig, token: str | None = None) -> str:
    """Create the dataset repo (private/gated as asked) and upload `folder`. Returns the repo's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise PublishError(f"{folder} is not a published dataset folder (no README.md and data/): run `lrfp publish --out` first")
    if token is None:
        token = check_ready(cfg)
    api = HfApi(endpoint=cfg.hub, token=token)
    step = "checking the token"
    try:
        user = api.whoami()
        log.info("pushing as %s to %s", user.get("name"), cfg.repo_id)
        step = f"creating the dataset repo {cfg.repo_id}"
        api.create_repo(cfg.repo_id, repo_type="dataset", private=cfg.private, exist_ok=True)
        if cfg.gated:
            step = f"gating {cfg.repo_id}"
            api.update_repo_settings(cfg.repo_id, gated="auto", repo_type="dataset")
        step = f"uploading {folder}"
        api.upload_folder(
            repo_id=cfg.repo_id, folder_path=str(folder), repo_type="dataset",
            commit_message="lrfp publish", allow_patterns=["README.md", "data/*.parquet"],
            # Shards of an earlier push that this one does not have would otherwise stay and be loaded.
            delete_patterns=["data/*.parquet"],
        )
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        if status == 401:
            raise PublishError(
                f"the Hugging Face Hub rejected the token while {step} (HTTP 401): log in again with `hf auth login` "
                "or set a valid HF_TOKEN"
            ) from None
        if status == 403:
            raise PublishError(
                f"the token may not write {cfg.repo_id} (HTTP 403 while {step}): use a token with write access "
                "to that user or organization"
            ) from None
        detail = (getattr(e, "server_message", None) or "").strip()
        raise PublishError(
            f"the Hugging Face Hub answered HTTP {status} while {step}" + (f": {detail}" if detail else "")
        ) from None
    except _transport_errors() as e:
        raise PublishError(
            f"lost the connection to the Hugging Face Hub at {cfg.hub} while {step} ({type(e).__name__}: {e}); "
            f"the dataset is complete in {folder}: run the push again"
        ) from None
    return f"{cfg.hub}/datasets/{cfg.repo_id}"
