"""What machine lrfp runs on, for benchmark rows and measurement records: the CPU's model name, and the cores
this process may use."""

from __future__ import annotations

import os
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


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask: taskset, a container's cpuset), else
    os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
