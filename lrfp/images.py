"""Decode, normalize and encode images: RGB, optional downscale, deterministic PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageDecodeError(Exception):
    """The bytes are not a decodable image, or its pixels cannot be read as RGB; the message says why."""


def load_rgb(data: bytes) -> Image.Image:
    """Decode image bytes fully (a truncated file fails here, not later) into an RGB image.

    EXIF orientation is applied, so a phone photo is stored the way it is seen. Every Pillow mode is
    converted by what its values mean (see `to_rgb`). Raises ImageDecodeError with the reason: not an
    image, corrupt or truncated, too large (Pillow's decompression-bomb limit), or a mode lrfp cannot read.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return to_rgb(im)
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not an image") from e
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(too_large_reason(e)) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"corrupt or truncated image ({e})") from e


def open_rgb(path: Path) -> Image.Image:
    """Read an image file into RGB like `load_rgb`; errors name the file.

    Raises ImageFileError (an LrfpError) naming `path`: missing, unreadable, not an image, corrupt or
    truncated, or too large to open.
    """
    from lrfp.errors import ImageFileError

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as e:
        raise ImageFileError(path, "the file is missing") from e
    except IsADirectoryError as e:
        raise ImageFileError(path, "it is a folder, not an image file") from e
    except OSError as e:
        raise ImageFileError(path, f"cannot be read ({e.strerror})") from e
    try:
        return load_rgb(data)
    except ImageDecodeError as e:
        raise ImageFileError(path, str(e)) from e


def too_large_reason(e: Exception) -> str:
    """The skip/error reason for Pillow's DecompressionBombError (pixel count over 2x MAX_IMAGE_PIXELS)."""
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    return (f"image too large to open ({e}); lrfp keeps Pillow's guard against decompression bombs "
            f"at {limit / 1e6:.0f} megapixels: shrink the image first")


_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I;16BS", "I;16LS"}


def to_rgb(im: Image.Image) -> Image.Image:
    """An 8-bit RGB image whose pixels mean what the source's mode says they mean.

    - 1, L, P, RGB, RGBX, CMYK, YCbCr, HSV: Pillow's own conversion.
    - LA, La, PA, RGBA, RGBa, P with transparency: composited over white (what a viewer shows).
    - LAB: through an ICC Lab -> sRGB transform (Pillow's plain convert would keep only L).
    - I;16 variants (16-bit): value / 257, so 65535 is white (Pillow's convert clips at 255: all white).
    - I (32-bit integer) and F (float): 0..1 floats are scaled by 255, values within 0..255 are taken
      as 8-bit, within 0..65535 as 16-bit; anything else raises ImageDecodeError (no guessed scale).
    Raises ImageDecodeError for a mode Pillow cannot turn into RGB.
    """
    import numpy as np

    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("1", "L", "RGBX", "CMYK", "YCbCr", "HSV"):
        return im.convert("RGB")
    if mode == "P":
        if "transparency" in im.info:
            return _over_white(im.convert("RGBA"))
        return im.convert("RGB")
    if mode in ("LA", "PA", "RGBA"):
        return _over_white(im.convert("RGBA"))
    if mode in ("La", "RGBa"):  # premultiplied alpha: un-premultiply first
        return _over_white((im.convert("LA") if mode == "La" else im).convert("RGBA"))
    if mode == "LAB":
        from PIL import ImageCms

        lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
        return ImageCms.applyTransform(im, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
    if mode in _SIXTEEN_BIT:
        arr = np.asarray(im).astype(np.float64)
        if mode.endswith("S"):
            raise ImageDecodeError(f"signed 16-bit pixels (mode {mode}): save it as unsigned 8 or 16 bit")
        return _gray(arr / 257.0)
    if mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise ImageDecodeError(f"mode {mode} image with no or non-finite pixel values")
        lo, hi = arr.min(), arr.max()
        if lo < 0:
            raise ImageDecodeError(f"mode {mode} image with negative values (min {lo:g}): "
                                   "no known scale; save it as 8- or 16-bit")
        if mode == "F" and hi <= 1.0:
            return _gray(arr * 255.0)
        if hi <= 255:
            return _gray(arr)
        if hi <= 65535:
            return _gray(arr / 257.0)
        raise ImageDecodeError(f"mode {mode} image with values up to {hi:g}: no known scale; "
                               "save it as 8- or 16-bit")
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageDecodeError(f"image mode {mode} cannot be read as RGB ({e})") from e


def _gray(arr) -> Image.Image:  # noqa: ANN001 - float ndarray HxW in 0..255
    import numpy as np

    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")


def _over_white(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def downscale(im: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink so the longer side is at most max_side (area averaging, like a low-res camera). Never upscales."""
    if not max_side or max(im.size) <= max_side:
        return im
    scale = max_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.BOX)


def encode_png(image: Any) -> bytes:
    """PNG bytes of a crop, the one encoder every command stores with: a PIL image (any mode, stored as RGB)
    or an OpenCV BGR array of shape (h, w, 3), uint8. The same pixels always give the same bytes (no
    timestamps or metadata), which the content-addressed store relies on. Raises ValueError if OpenCV
    cannot encode it.

    zlib level 1 with the "up" filter on every row (OpenCV's libpng). Measured on 110 face crops (~90 px)
    of the shared clips: files ~7% larger than at level 6 and encoding 3.7x faster; libpng's default
    (trying all five filters on every row) is 1.5x slower than "up" alone and gives 2.5% larger files.
    """
    import cv2
    import numpy as np

    if isinstance(image, Image.Image):
        image = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The image files below `folder` (recursively, by name: `is_image_name`), sorted; and (path relative to
    `folder`, why) of each entry left out that a user would expect to count, as `lrfp import` reports them: a broken
    symbolic link, or an image name that is not a regular file (a FIFO, a socket, a folder named `x.jpg`)."""
    import os

    files, skipped = [], []
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            if is_image_name(p):
                files.append(p)
        elif p.is_symlink() and not p.exists():
            skipped.append((p.relative_to(folder).as_posix(),
                            f"broken symbolic link (its target {os.readlink(p)} does not exist)"))
        elif is_image_name(p):
            why = "a folder, not an image file" if p.is_dir() else "not a regular file (a FIFO, a socket or a device)"
            skipped.append((p.relative_to(folder).as_posix(), why))
    return files, skipped
