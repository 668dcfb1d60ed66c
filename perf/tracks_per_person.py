"""Tracks per visible person on the shared clips: how often one person's face is split into several tracks.

Runs the default detector (tiled BlazeFace) on frames sampled every --every seconds, links them with lrfp's
tracker and prints, per clip, the tracks, the tracks seen on 2+ samples, and the people visible (counted by eye,
../shared/data/videos/SOURCE.md and faces_gt/README.md). With --sheets DIR it writes one image per clip whose rows
are the tracks (crops left to right in time), to check by eye that no track jumps between two people.

Usage:
  python perf/tracks_per_person.py --models-dir ../shared/models --every 0.5 [--sheets /tmp/tracks]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# clip -> (downscale to this height or None, people whose face is visible at some point; counted by eye)
CLIPS = {
    "intel_face-demographics-walking-and-pause.gif": (None, 3),
    "face_recognition_short_hamilton_clip.mp4": (None, 2),
    "facenet-pytorch_video.mp4": (360, 12),
}


def run_clip(path: Path, height: int | None, every: float, models_dir: Path, appearance: bool, min_face: int):
    import cv2

    from lrfp.fetch.detect import DetectorSettings, FrameDetector
    from lrfp.fetch.detectors.weights import find_model
    from lrfp.fetch.frames import probe_video, sample_frames
    from lrfp.fetch.track import Candidate, IoUTracker, face_appearance

    info = probe_video(path, downscale=height is not None)
    tracker = IoUTracker(per_track=50)
    done = []
    detections = 0
    with FrameDetector(DetectorSettings(weights=find_model("full", models_dir))) as det:
        for sample, frame in enumerate(sample_frames(path, info, every)):
            image = frame.image
            if height is not None and image.shape[0] != height:
                image = cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height), interpolation=cv2.INTER_AREA)
            cands = []
            for d in det.detect(image):
                if min(d.box[2], d.box[3]) < min_face:
                    continue
                x, y, w, h = d.box
                crop = image[y:y + h, x:x + w].copy()
                cands.append(Candidate(frame.time_s, frame.index, d.box, d.score, crop, face_appearance(crop) if appearance else None))
            detections += len(cands)
            done += tracker.update(sample, cands)
    done += tracker.finish()
    return done, detections


def sheet(tracks, out: Path) -> None:
    import cv2
    import numpy as np

    rows = []
    for t in tracks:
        cells = [cv2.resize(c.payload, (48, 48)) for c in t.kept]
        row = np.full((48, 48 * 12, 3), 255, np.uint8)
        for i, c in enumerate(cells[:12]):
            row[:, i * 48:(i + 1) * 48] = c
        rows.append(row)
    if rows:
        cv2.imwrite(str(out), np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    p.add_argument("--models-dir", type=Path, default=Path("../shared/models"))
    p.add_argument("--every", type=float, default=0.5)
    p.add_argument("--min-face", type=int, default=0)
    p.add_argument("--sheets", type=Path)
    p.add_argument("--no-appearance", action="store_true", help="link by boxes only")
    a = p.parse_args(argv)
    for name, (height, people) in CLIPS.items():
        tracks, dets = run_clip(a.videos / name, height, a.every, a.models_dir, not a.no_appearance, a.min_face)
        multi = [t for t in tracks if t.seen >= 2]
        print(f"{name}: {dets} detections, {len(tracks)} tracks ({len(multi)} seen on 2+ samples), "
              f"{people} people visible: {len(multi) / people:.2f} multi-sample tracks per person")
        if a.sheets:
            a.sheets.mkdir(parents=True, exist_ok=True)
            sheet(tracks, a.sheets / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
