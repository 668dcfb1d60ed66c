"""What every face detector returns and promises: `Detection`, the `ImageDetector` contract, native-stderr quieting."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 16
"""Images (frames or tiles) with a side under this many pixels are not given to a detector: no detector here
finds a face in them (the smallest faces counted in ../shared/data/faces_gt are 10 px), and MediaPipe fails on
some of them with a native stack trace on stderr (seen on a 158x1 image)."""


@dataclass(frozen=True)
class Detection:
    """One face. box: x, y, w, h in the pixels of the image given to the detector (whole numbers once clipped to
    a frame; floats before). score: the detector's confidence, 0..1."""

    box: tuple[float, float, float, float]
    score: float


class ImageDetector(Protocol):
    """A detector for one RGB image (H x W x 3 uint8). Boxes may reach past the image's edges (a face cut by the
    edge gets the box of the whole face, as far as the detector can tell); the caller clips them."""

    name: str

    def detect_image(self, rgb: Any) -> list[Detection]: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Native libraries (MediaPipe/LiteRT, OpenMP) write straight to file descriptor 2: model warnings, delegate
    info, "Logging before InitGoogle()", memory-alignment notices, stack traces. Keep them off the terminal; they
    go to the log at debug level."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("native stderr: %s", text)


class QuietFirstCalls:
    """Runs a native call with fd 2 redirected the first time it sees each image shape.

    Native notices come on a detector's first call and when an input size is new to it (MediaPipe reallocates
    its tensors), so quieting every call would be needed only for those; quieting every call would also swallow
    what the terminal shows meanwhile (progress lines are written to stderr by another thread).
    """

    def __init__(self) -> None:
        self._seen: set[tuple[int, ...]] = set()

    def __call__(self, shape: tuple[int, ...], fn: Any, *args: Any) -> Any:
        if shape in self._seen:
            return fn(*args)
        with quiet_native_stderr():
            out = fn(*args)
        self._seen.add(shape)
        return out
