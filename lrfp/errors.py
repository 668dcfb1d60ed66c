"""Typed errors: the library raises these, `lrfp.cli.main` turns them into `Error: ...` + exit code."""


class LrfpError(Exception):
    """Base class: a problem the user can act on. The message is shown as is."""

    exit_code = 1


class UsageError(LrfpError):
    """Bad options or arguments (exit 2, like click's own usage errors)."""

    exit_code = 2


class DataDirError(LrfpError):
    """The data directory cannot be created, read or written."""


class SchemaError(LrfpError):
    """The store's SQLite file is from a newer lrfp, or is not an lrfp store."""


class InputError(LrfpError):
    """An input file or folder (images, groups CSV, manifest) is missing or malformed."""

    exit_code = 2


class ManifestError(InputError):
    """The manifest is unusable; the message lists every bad row as FILE:LINE: reason."""


class NotFoundError(LrfpError):
    """A named thing (split, source, model, crop) does not exist in the store or registry."""


class SplitError(LrfpError):
    """A split cannot be made as asked (too few crops, empty class, bad ratios...)."""


class PublishError(LrfpError):
    """The dataset cannot be exported or pushed (license, no split, no token, offline...)."""


class ModelsError(LrfpError):
    """Detector model files are missing, corrupt, or cannot be obtained."""


class BenchError(LrfpError):
    """The benchmark cannot run as asked (no split, unknown model, no weights, no CUDA...)."""


class BenchUsageError(BenchError, UsageError):
    """A bench option or input that cannot work (unknown model, --epochs 0, --device tpu...): exit 2."""
