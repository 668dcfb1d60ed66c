"""Checks on folders lrfp writes into (the store's data directory, `lrfp bench --out`): a real write probe."""

from __future__ import annotations

import os
from pathlib import Path


def probe_writable(folder: Path) -> None:
    """Create and remove an empty file in `folder`; raises the OSError if that fails.

    A real write, because os.access says yes on read-only mounts and to root in folders without
    permission alike. The probe's name carries the pid, so concurrent processes do not collide.
    """
    probe = Path(folder) / f".lrfp-write-probe.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()
