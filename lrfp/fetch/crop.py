"""Square face crops with a margin, cut at the frame's own resolution (never upscaled)."""

from __future__ import annotations

from typing import Any

from lrfp.images import encode_png  # noqa: F401 - the one PNG encoder; the fetch writer imports it from here


def square_box(
    box: tuple[int, int, int, int], frame_w: int, frame_h: int, margin: float
) -> tuple[int, int, int, int]:
    """The square (x, y, side, side) around a face box, `margin` x side added on each side, kept inside the frame.

    Near an edge the square slides inward rather than shrinking; it shrinks only when the frame itself
    is smaller than the square.
    """
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin)))
    side = max(1, min(side, frame_w, frame_h))
    cx, cy = x + w / 2, y + h / 2
    x0 = int(round(cx - side / 2))
    y0 = int(round(cy - side / 2))
    x0 = min(max(0, x0), frame_w - side)
    y0 = min(max(0, y0), frame_h - side)
    return x0, y0, side, side


def cut_crop(image: Any, square: tuple[int, int, int, int]) -> Any:
    """The pixels of `square` from a frame, copied (so the frame can be freed)."""
    x, y, w, h = square
    return image[y : y + h, x : x + w].copy()


def encode_context_jpeg(frame_bgr: Any, max_width: int = 320, quality: int = 80) -> bytes:
    """A small JPEG of the whole frame, shown next to a crop when labeling."""
    import cv2

    h, w = frame_bgr.shape[:2]
    if w > max_width:
        frame_bgr = cv2.resize(frame_bgr, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
