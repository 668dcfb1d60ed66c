"""A stored crop's PNG on disk: read it, or say which crop is missing or damaged and how to fix it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lrfp.errors import CropFileError, ImageFileError
from lrfp.images import load_rgb, ImageDecodeError

FIX_HINT = ("restore it from a backup of the store, or for an imported source rerun `lrfp import` with --redo "
            "(it writes the crop again); `lrfp stats` lists every missing or damaged crop file")
FETCHED_FIX_HINT = ("restore it from a backup of the store: lrfp cannot make a fetched crop again (`lrfp fetch --redo` "
                    "keeps labeled and split crops as they are, and writes no file for a crop the store already "
                    "holds); `lrfp stats` lists every missing or damaged crop file")
IMPORTED_FIX_HINT = ("restore it from a backup of the store, or rerun `lrfp import` of its folder with --redo (it "
                     "writes the crop again); `lrfp stats` lists every missing or damaged crop file")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every complete PNG ends with


def _where(root: Path, row: Any) -> tuple[Path, str]:
    rel = row if isinstance(row, str) else row["path"]
    crop_id = None if isinstance(row, str) else row["id"]
    return Path(root) / rel, (f"crop {crop_id} ({rel})" if crop_id is not None else f"crop {rel}")


def fix_hint(root: Path, row: Any) -> str:
    """How to get a crop's lost or damaged file back, by its source's kind: an imported crop is written again by
    `lrfp import --redo`; a fetched one cannot be made again (a rerun writes no file for a crop the store holds, as
    `Store.add_frames_and_crops` skips known sha256s). The kind is read from the store's index (read-only, only on
    this error path); FIX_HINT where it cannot be."""
    import sqlite3

    from lrfp.store import DB_NAME

    rel = row if isinstance(row, str) else row["path"]
    try:
        con = sqlite3.connect(f"{(Path(root) / DB_NAME).absolute().as_uri()}?mode=ro", uri=True)
        try:
            kinds = {k for (k,) in con.execute(
                "SELECT DISTINCT s.kind FROM crops c JOIN sources s ON s.id = c.source_id WHERE c.path = ?", (rel,))}
        finally:
            con.close()
    except sqlite3.Error:
        return FIX_HINT
    return {frozenset({"video"}): FETCHED_FIX_HINT, frozenset({"folder"}): IMPORTED_FIX_HINT}.get(frozenset(kinds), FIX_HINT)


def read_crop_bytes(root: Path, row: Any, *, verify: bool = True) -> bytes:
    """The PNG bytes of a crop (`row` has `id` and `path`, or is the relative path).

    With verify, the bytes are decoded once, so a truncated file fails here. Raises CropFileError
    naming the crop, what is wrong and how to fix it.
    """
    path, name = _where(root, row)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise CropFileError(name, f"file {path} is missing under the store", fix_hint(root, row)) from e
    except OSError as e:
        raise CropFileError(name, f"file {path} cannot be read ({e.strerror})", fix_hint(root, row)) from e
    if verify:
        try:
            load_rgb(data)
        except ImageDecodeError as e:
            raise CropFileError(name, f"file {path} is damaged: {e}", fix_hint(root, row)) from e
    return data


def open_crop(root: Path, row: Any):  # noqa: ANN201 - a PIL RGB image
    """A crop as an RGB PIL image. Raises CropFileError (see `read_crop_bytes`)."""
    path, name = _where(root, row)
    data = read_crop_bytes(root, row, verify=False)
    try:
        return load_rgb(data)
    except ImageDecodeError as e:
        raise CropFileError(name, f"file {path} is damaged: {e}", fix_hint(root, row)) from e


def crop_file_problem(path: Path) -> str | None:
    """Cheap check of one crop file without decoding it: "missing", "damaged", or None when it looks whole.

    A file lrfp wrote is a complete PNG: it starts with the PNG signature and ends with the IEND chunk,
    so a deleted or truncated file is found by reading 20 bytes.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(0, os.SEEK_END)
            if fh.tell() < 20:
                return "damaged"
            fh.seek(-12, os.SEEK_END)
            tail = fh.read(12)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    return None if head == _PNG_SIGNATURE and tail == _PNG_END else "damaged"


__all__ = ["FETCHED_FIX_HINT", "FIX_HINT", "IMPORTED_FIX_HINT", "fix_hint", "ImageFileError", "crop_file_problem", "open_crop", "read_crop_bytes"]
