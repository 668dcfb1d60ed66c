"""Typed errors: the library raises these, `lrfp.cli.main` turns them into `Error: ...` + exit code."""


class LrfpError(Exception):
    """Base class: a problem the user can act on. The message is shown as is."""

    exit_code = 1


class UsageError(LrfpError):
    """Bad options or arguments (exit 2, like click's own usage errors)."""

    exit_code = 2


class DataDirError(LrfpError):
    """The data directory cannot be created, read or written (the disk or its state stops the work: exit 1)."""


class NoStoreError(DataDirError):
    """--data-dir names no lrfp store: a folder that does not exist, is a file, or holds no store (exit 2:
    the user's -d or LRFP_DATA_DIR points at the wrong place, or nothing was imported yet)."""

    exit_code = 2


class SchemaError(LrfpError):
    """The store's SQLite file is from a newer lrfp, or is not an lrfp store."""


class InputError(LrfpError):
    """An input file or folder (images, groups CSV, manifest) is missing or malformed."""

    exit_code = 2


class ManifestError(InputError):
    """The manifest is unusable; the message lists every bad row as FILE:LINE: reason."""


class NotFoundError(LrfpError):
    """A named thing (split, source, model, crop) does not exist in the store or registry.

    Exit 2: the name came from the user's options (--split, --source, a model name), so it is bad input.
    """

    exit_code = 2


class NoSplitError(NotFoundError):
    """The store has no split yet (exit 2, like an unknown --split: the store given cannot be used as it is by a
    command that needs a split; `lrfp split` makes one)."""


class SplitError(LrfpError):
    """A split cannot be made as asked (too few crops, empty class, bad ratios...)."""


class PublishError(LrfpError):
    """The dataset cannot be exported or pushed (license, no split, no token, offline...)."""


class PublishInputError(PublishError):
    """Bad input to publish: a malformed --repo-id, --out that is a file or not empty, HF_ENDPOINT not a URL."""

    exit_code = 2


class NotATerminalError(UsageError):
    """`lrfp label` was started with stdin, stdout or stderr not a terminal (exit 2); nothing was drawn or stored."""


class LabelAppError(LrfpError):
    """The `lrfp label` app stopped on an unexpected error (a bug): exit 1, never 0; every label typed before
    it is stored."""


class ModelsError(LrfpError):
    """Detector model files are missing, corrupt, or cannot be obtained."""


class BenchError(LrfpError):
    """The benchmark cannot run as asked (no split, unknown model, no weights, no CUDA...)."""


class BenchUsageError(BenchError, UsageError):
    """A bench option or input that cannot work (unknown model, --epochs 0, --device tpu...): exit 2."""


class ImageFileError(LrfpError):
    """An image file lrfp needs (a stored crop, an --eval-on image) is missing, unreadable or undecodable.

    `path` is the file; the message names it and says what is wrong with it.
    """

    def __init__(self, path, reason: str, hint: str = "") -> None:  # noqa: ANN001 - str or Path
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" + (f"; {hint}" if hint else ""))


class CropFileError(ImageFileError):
    """A stored crop's PNG is missing or damaged under the store (deleted or truncated by hand)."""


class CheckpointError(InputError):
    """A checkpoint file cannot be used: not one `lrfp bench` wrote, another version's, or other classes (exit 2)."""


class WorkerPoolError(LrfpError):
    """A process that lrfp's worker pool cannot do without died (the Manager process that carries the workers'
    reports, or every worker before any task began). The message says which and how it ended."""


class DiskFullError(DataDirError):
    """The disk (or the user's quota) that a command writes on is full: ENOSPC/EDQUOT from the OS or SQLite's
    "database or disk is full" (exit 1: nothing is wrong with the input; free space and rerun)."""

    def __init__(self, path=None, *, store: bool = True) -> None:  # noqa: ANN001 - str, Path or None
        """`store`: whether the command was writing to the store (then "what was stored stays"), or only to output
        files (predict, export, publish, bench --out: "what was written before stays")."""
        self.path = path
        where = f"the disk holding {path}" if path else "the disk lrfp writes on"
        kept = "what was stored stays" if store else "what was written before stays"
        super().__init__(f"{where} is full (No space left on device): free some space and rerun the same command "
                         f"({kept})")


def exception_chain(e: BaseException | None):  # noqa: ANN201 - an iterator of exceptions
    """`e` and the exceptions it wraps (its __cause__, else its __context__), each once."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _says_disk_full(x: BaseException) -> bool:
    import errno
    import sqlite3

    return ((isinstance(x, OSError) and x.errno in (errno.ENOSPC, errno.EDQUOT))
            or (isinstance(x, sqlite3.OperationalError) and "disk is full" in str(x))
            or "No space left on device" in str(x) or "Disk quota exceeded" in str(x))


def disk_full(e: BaseException | None) -> bool:
    """Whether `e` (or an exception it wraps) says the disk is full: ENOSPC/EDQUOT from the OS, SQLite's
    "database or disk is full", or a library's message around an ENOSPC (yt-dlp, torch.save, pyarrow)."""
    return any(_says_disk_full(x) for x in exception_chain(e))


def disk_full_path(e: BaseException | None) -> str | None:
    """The file an OSError in `e`'s chain that says the disk is full names (its `filename`), else None (SQLite
    and most libraries do not say which file)."""
    for x in exception_chain(e):
        if _says_disk_full(x) and isinstance(x, OSError) and x.filename:
            return str(x.filename)
    return None
