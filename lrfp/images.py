"""Decode, normalize and encode images: RGB, optional downscale, deterministic PNG bytes."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class ImageDecodeError(Exception):
    """The bytes are not a decodable image; the message says why."""


def load_rgb(data: bytes) -> Image.Image:
    """Decode image bytes fully (a truncated file fails here, not later) into an RGB image.

    EXIF orientation is applied, so a phone photo is stored the way it is seen.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")
    except UnidentifiedImageError as e:
        raise ImageDecodeError("not an image") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"corrupt or truncated image ({e})") from e


def downscale(im: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink so the longer side is at most max_side (area averaging, like a low-res camera). Never upscales."""
    if not max_side or max(im.size) <= max_side:
        return im
    scale = max_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.BOX)


def encode_png(im: Image.Image) -> bytes:
    """PNG bytes; the same pixels always give the same bytes (no timestamps or metadata)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES
