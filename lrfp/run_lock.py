"""Which lrfp command is at work on a store: advisory lock files in the data directory's `locks/` folder.

`lrfp fetch` holds `locks/fetch.lock` exclusively for its whole run, so a second fetch on the same store is refused
and told which process has it (two would download and detect the same videos at once, each marking the other's
video `pending` or `interrupted`). `lrfp import` holds `locks/import.lock` shared (imports of several folders may run
at once) and `locks/import.SOURCE.lock` exclusively (two imports of one source, e.g. two `--redo` with other
settings, would mix their crops).
The operating system releases a lock when its process ends, however it ends (kill -9, a crash, a power cut), so
a video left `running` or a folder left `importing` while no process holds that lock was left by a run that was
killed; `lrfp stats` says so, and the same command's rerun finishes it.

The locks are flock(2) locks (Linux and macOS). The `filelock` package is not used: it truncates the file on every
attempt (the holder's description would be lost), and has no shared mode and no way to ask whether a lock is held.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.errors import LrfpError

FETCH = "fetch"
IMPORT = "import"
LEFT_BY = {"running": FETCH, "importing": IMPORT}
"""A source status that only a run of this command sets and ends: left in the store while no process holds
the command's lock, it was left by a run that was killed."""

_TAKEN = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)  # flock's errors for a lock another descriptor holds
log = logging.getLogger(__name__)

ACQUIRE_WAIT_S = 2.0
"""How long `hold` retries a lock that is taken: `is_held` takes it for a moment to ask, which must not make a
command starting at that instant refuse to run."""


class StoreBusyError(LrfpError):
    """Another process runs the same command on this store, and the command cannot run beside it (exit 1)."""


LOCKS_DIR = "locks"


def lock_path(root: Path, command: str) -> Path:
    """The lock file of `command` (a name: letters, digits, '.', '_', '-') in the data directory `root`."""
    return Path(root) / LOCKS_DIR / f"{command}.lock"


@contextlib.contextmanager
def hold(root: Path, command: str, *, shared: bool = False, doing: str | None = None, hint: str = "",
         what: str | None = None) -> Iterator[Callable[..., None]]:
    """Hold `command`'s lock on the store at `root` (an existing data directory) until the block ends.

    Exclusive (the default): the holder writes its pid, start time (UTC) and `doing` (e.g. "manifest m.csv") into
    the file, and a second holder is refused with StoreBusyError naming them (`what`, default `lrfp COMMAND`) and
    ending with `hint`. The block gets a function `describe(**more)` that adds JSON-able fields to what the file
    says (e.g. `sources=[names]`, the sources a fetch works on, read by `lrfp stats`); it does nothing for a shared
    or unlocked hold. Shared: any
    number of holders at once; only `is_held` sees them. On a file system without flock(2) locks (some network
    mounts) the block runs unlocked, with a warning in the log. Raises StoreBusyError (exit 1) when the lock stays
    taken for ACQUIRE_WAIT_S, OSError when the file cannot be created or written (a full disk)."""
    path = lock_path(root, command)
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        locked = _take(fd, shared, root, command, hint, what)
        info: dict[str, Any] = {"pid": os.getpid(), "doing": doing,
                                "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}

        def describe(**more: Any) -> None:
            if locked and not shared:
                info.update(more)
                text = json.dumps(info).encode()
                os.pwrite(fd, text, 0)  # over the old text, then cut: a reader never finds the file empty
                os.ftruncate(fd, len(text))

        describe()
        try:
            yield describe
        finally:
            if locked and not shared:
                with contextlib.suppress(OSError):  # a full disk or a gone folder: the lock is released anyway
                    os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _take(fd: int, shared: bool, root: Path, command: str, hint: str, what: str | None) -> bool:
    """Lock `fd` (see `hold`): True once taken, False where the file system has no locks; StoreBusyError."""
    deadline = time.monotonic() + ACQUIRE_WAIT_S
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in _TAKEN:
                log.warning("the store in %s cannot be locked (%s): a second `lrfp %s` on it would not be refused",
                            root, e.strerror, command)
                return False
            if time.monotonic() >= deadline:
                raise StoreBusyError(busy_message(root, command, holder(root, command), hint, what)) from None
            time.sleep(0.05)


def is_held(root: Path, command: str) -> bool | None:
    """Whether a process holds `command`'s lock on the store at `root` now: True, False, or None when it cannot be
    told (the lock file cannot be read). No lock file: False (no run of that command since lrfp made them)."""
    path = lock_path(root, command)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken for a moment only (see ACQUIRE_WAIT_S)
    except OSError as e:
        return True if e.errno in _TAKEN else None
    else:
        return False
    finally:
        os.close(fd)


def holder(root: Path, command: str) -> dict[str, Any] | None:
    """What the exclusive holder of `command`'s lock wrote about itself ({pid, started, doing}, and what it added
    with `describe`: a fetch's `sources`), or None."""
    try:
        info = json.loads(lock_path(root, command).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def busy_message(root: Path, command: str, info: dict[str, Any] | None, hint: str = "", what: str | None = None) -> str:
    """The refusal of a second `lrfp <command>` (or `what`) on one store, naming the run that holds it when known."""
    who = ""
    if info and info.get("pid"):
        who = f" (pid {info['pid']}, since {info.get('started')}" + (f", {info['doing']})" if info.get("doing") else ")")
    stop = f"`kill {info['pid']}`" if info and info.get("pid") else "Ctrl-C in its terminal"
    return (f"another `{what or f'lrfp {command}'}` is running on the store in {root}{who}. Two at once would process the same "
            f"items twice. Wait for it to end or stop it ({stop}; what it stored is kept), then rerun"
            + (f"; {hint}" if hint else ""))
