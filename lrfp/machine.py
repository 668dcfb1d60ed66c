"""What machine lrfp runs on, for benchmark rows and measurement records: the CPU's model name."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name as Linux reports it (/proc/cpuinfo "model name", what `lscpu` shows), else what
    `platform` knows (processor, then machine type, e.g. 'x86_64'), else 'unknown CPU'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
