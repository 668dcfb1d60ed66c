"""glibc's malloc told to keep the memory training frees, so the next step reuses it instead of faulting it in.

Each training step allocates and frees the same tensors (a batch of 64 images of 64 px is 3 MiB in float32;
activations and gradients are many such). With glibc's defaults, blocks above its mmap threshold get fresh pages
from the kernel and freed heap memory above the trim threshold goes back to it, so every step pays those pages'
faults again: up to 20,448 minor page faults a step for ten 8 MiB tensors, though not in every process (glibc's
thresholds adapt to what the process freed before; tests/test_bench_cpu_allocator.py). Serving
blocks below 32 MiB from the heap and keeping freed memory (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) made
Model 3's step 1.35-1.45x faster on one AMD EPYC core, lrfp's loop and the bare step alike, and left Model 1-bn's
unchanged (docs/bench-speed.md). This is what PyTorch's CPU performance guide gets from switching the allocator
to jemalloc or TCMalloc, which needs LD_PRELOAD before the process starts; these are glibc's own two settings,
taken in the running process. The cost: the process keeps its peak heap until it exits (training reaches that
peak every step anyway).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # the most glibc accepts on a 64-bit machine (DEFAULT_MMAP_THRESHOLD_MAX, mallopt(3))
TRIM_THRESHOLD = 1 << 30
# a user's own choice is left alone: these settings by environment, glibc malloc tunables, another allocator preloaded
# (a variable -> the words in its value that count; none: any value counts)
USER_SETTINGS: dict[str, tuple[str, ...]] = {
    "MALLOC_MMAP_THRESHOLD_": (), "MALLOC_TRIM_THRESHOLD_": (), "GLIBC_TUNABLES": ("glibc.malloc",),
    "LD_PRELOAD": ("jemalloc", "tcmalloc", "mimalloc"),
}

_state: list[str] = []  # what keep_freed_memory() found, once per process


def keep_freed_memory() -> str:
    """Apply the two settings to this process's glibc malloc, once; later calls return the first answer.

    Returns what holds now, for the report: "kept for reuse (glibc mallopt)" where the settings took; "left as
    the user set it (NAME)" where one of USER_SETTINGS is in the environment; "default (not glibc)" on macOS,
    Windows or a musl Linux, where nothing is changed. Never raises.
    """
    if not _state:
        _state.append(_apply())
    return _state[0]


def _apply() -> str:
    user = [name for name, marks in USER_SETTINGS.items()
            if (value := os.environ.get(name)) and (not marks or any(m in value for m in marks))]
    if user:
        return f"left as the user set it ({', '.join(user)})"
    if not sys.platform.startswith("linux"):
        return "default (not glibc)"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a stub that does nothing
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return "default (not glibc)"
    return "kept for reuse (glibc mallopt)" if ok else "default (glibc refused mallopt)"
