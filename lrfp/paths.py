"""Checks of the files and folders a command is given or writes into (a real write probe), with a message
that says what the path is instead."""

from __future__ import annotations

from pathlib import Path

from lrfp.errors import InputError, UsageError


def check_input_file(path: Path, what: str) -> None:
    """Raise InputError (exit 2) unless `path` is an existing file: missing, or a folder where a file is needed."""
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file: give the path of the {what} itself")
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is not a regular file")


def check_input_folder(path: Path, what: str, hint: str = "") -> None:
    """Raise InputError (exit 2) unless `path` is an existing folder: missing, or a file where a folder is needed.

    `hint` (e.g. "give a folder of face images") is added after a colon to each message.
    """
    tail = f": {hint}" if hint else ""
    if path.is_file():
        raise InputError(f"{what} {path} is a file, not a folder{tail}")
    if not path.exists():
        raise InputError(f"{what} {path} does not exist{tail}")
    if not path.is_dir():
        raise InputError(f"{what} {path} is not a folder{tail}")


def check_output_suffix(path: Path, suffix: str, label: str) -> None:
    """Raise UsageError (exit 2) unless the file `path` to write ends in `suffix` (e.g. '.onnx', any case).
    `label` names the path in the message (e.g. '--video-out out.mp4')."""
    if Path(path).suffix.lower() != suffix:
        raise UsageError(f"{label}: give a file name ending in {suffix}")


def prepare_output_file(path: Path, suffix: str, label: str) -> Path:
    """`path` checked as check_output_suffix does, with its folder created. Raises UsageError (exit 2) for the
    wrong suffix or a folder that cannot be made."""
    path = Path(path)
    check_output_suffix(path, suffix, label)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{label}: cannot create its folder: {e.strerror or e}") from e
    return path


def umask_mode(mode: int = 0o777) -> int:
    """`mode` less the process umask: what mkdir() gives, for folders made by tempfile.mkdtemp (always 0700)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def make_staging_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder in `parent` to build output in and later rename into place.

    tempfile.mkdtemp makes it 0700 (private), which the renamed output folder would keep; it gets the
    mode a plain mkdir gives instead (0755 under umask 022). Raises OSError like mkdtemp.
    """
    import os
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, umask_mode())
    return tmp


def probe_writable(folder: Path) -> None:
    """Create and remove an empty file in `folder`; raises the OSError if that fails (the store's data
    directory, `lrfp bench --out`).

    A real write, because os.access says yes on read-only mounts and to root in folders without
    permission alike. The probe's name carries the pid, so concurrent processes do not collide.
    """
    import os

    probe = Path(folder) / f".lrfp-write-probe.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def unwritable_message(label: str, folder: Path, e: OSError) -> str:
    """The error text for an output folder (`label`, e.g. "--out") that could not be made or written in: it names
    the folder that refused (`folder` itself where it exists, else its nearest existing parent, which a
    `mkdir -p` writes in) and what to do."""
    import errno

    folder = Path(folder)
    reason = e.strerror or str(e)
    denied = e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    refused = "is not writable" if denied else "cannot be written in"
    try:
        exists = folder.is_dir()
        parent = next((p for p in folder.absolute().parents if p.is_dir()), None)
    except OSError:  # a parent that cannot even be searched
        exists, parent = False, None
    if exists or parent is None:
        return (f"{label} {folder} {refused} ({reason}): give {label} a folder you can write in"
                + (", or change its permissions" if denied else ""))
    return (f"{label} {folder} cannot be created: {parent} {refused} ({reason}); give {label} a folder you can "
            f"write in" + (f", or change the permissions of {parent}" if denied else ""))


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, hex (read in chunks by the standard library's `hashlib.file_digest`).
    Raises OSError if the file cannot be read."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
