"""BlazeFace full range through MediaPipe's Tasks FaceDetector, on one RGB image; closed explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrfp.fetch.detectors.base import Detection, QuietFirstCalls, quiet_native_stderr

# Eyes, nose tip and mouth centre: the first four of BlazeFace's six keypoints. Their mean is the box centre to
# within 2% of the box width (median; spread 6%), measured on 123 boxes away from the image edges in
# ../shared/data/faces_gt frames and tiles of them.
_CENTRE_KEYPOINTS = 4


class BlazeFace:
    """MediaPipe FaceDetector (IMAGE mode) with a BlazeFace .tflite model. Use as a context manager or close()."""

    name = "blazeface"

    def __init__(self, model_path: Path, min_score: float = 0.5) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=min_score,
        )
        with quiet_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)
        self.min_score = min_score
        self._quiet = QuietFirstCalls()

    def detect_image(self, rgb: Any) -> list[Detection]:
        """Faces in an RGB uint8 image (H x W x 3), best first; boxes in its pixels, not clipped (see below).

        MediaPipe clamps a box's left/top corner to 0 but keeps its width and height, so a face cut by the
        left or top edge would come back as a whole-face box moved inside the image. Such a box is put back
        where the face is, centred on the mean of the eye, nose and mouth keypoints (which are not clamped).
        """
        import mediapipe as mp
        import numpy as np

        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._quiet(rgb.shape, self._detector.detect, image)
        out = []
        for d in result.detections:
            score = float(d.categories[0].score) if d.categories else 0.0
            if score < self.min_score:
                continue
            bb = d.bounding_box
            x, y, bw, bh = float(bb.origin_x), float(bb.origin_y), float(bb.width), float(bb.height)
            kps = d.keypoints[:_CENTRE_KEYPOINTS] if d.keypoints else []
            if kps and (x <= 0 or y <= 0):
                if x <= 0:
                    x = min(x, sum(k.x for k in kps) / len(kps) * w - bw / 2)
                if y <= 0:
                    y = min(y, sum(k.y for k in kps) / len(kps) * h - bh / 2)
            if bw <= 0 or bh <= 0:
                continue
            out.append(Detection((x, y, bw, bh), score))
        out.sort(key=lambda d: -d.score)
        return out

    def close(self) -> None:
        if self._detector is not None:
            with quiet_native_stderr():
                self._detector.close()
            self._detector = None

    def __enter__(self) -> "BlazeFace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
