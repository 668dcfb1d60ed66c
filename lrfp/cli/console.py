"""The terminal: one rich Console for normal output and one for stderr, used only by `lrfp.cli`."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
