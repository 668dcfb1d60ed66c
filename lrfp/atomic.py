"""Write a file under a temporary name and rename it into place: a reader, a crash, Ctrl-C or a full disk never
leaves a half-written file at the final name (the rename is atomic on POSIX file systems, `os.replace`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temp_name(path: Path) -> Path:
    """A fresh, empty file beside `path` (`.NAME.XXXX.tmp.SUFFIX`: hidden, unique per writer, and ending in the
    same suffix, for writers that choose the format by it such as OpenCV's VideoWriter and matplotlib), with the
    mode a plain open() gives (mkstemp's 0600 would stay on the renamed file). Raises OSError like mkstemp."""
    from lrfp.paths import umask_mode

    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    os.chmod(name, umask_mode(0o666))
    return Path(name)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files `temp_name(path)` made that a killed writer (kill -9, a power cut) left beside
    `path`: only names of exactly that pattern (`.NAME.` + mkstemp's 8 characters + `.tmp` + SUFFIX). Call it only
    where no other writer of `path` can be running. Returns what was removed; never raises."""
    import re

    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp{re.escape(path.suffix)}")
    removed = []
    with contextlib.suppress(OSError):
        for p in path.parent.iterdir():
            if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


def discard(tmp: Path | None) -> None:
    """Remove a temporary file if it is there (never raises: it runs while another error is on its way)."""
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write the whole file at; when the block ends without an exception
    it is renamed to `path` (replacing an older file), else removed (also on KeyboardInterrupt). Raises OSError
    (the folder cannot be written, the disk is full)."""
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
