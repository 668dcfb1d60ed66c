"""Typed progress events of the long library calls (split, publish, import); fetch has its richer FetchEvent.

Library code reports progress through a callback that takes one event and never prints; the CLI
turns the events into a bar (lrfp/cli/progress.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` items of one stage: 'hash' (split: perceptual hashes of crops), 'export'
    (publish: rows written), 'import' (files looked at)."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[ProgressEvent], None]
