"""How fast `lrfp fetch` processes a 480p 30 fps video on one core, beside a plain decode-and-detect loop.

Not a test: run it by hand and put the table in docs/detectors.md ("Speed with tiles").

    python -m perf.fetch_speed [--repeat 3] [--seconds 14] [--markdown out.md] [--json out.json]

The clip: 854x480 at 30 fps, made from the 1080p arcade clip of ../shared/data/videos (played forward and
back, no cut), MPEG-4 part 2. One process, pinned to one CPU core (os.sched_setaffinity; OpenCV set to one
thread), measures in turn, --repeat times round robin (the machine is shared: the fastest run is the one least
disturbed by neighbours, medians are given too):

- decode:     OpenCV grab() of every frame (the least any sampler must do for inter-coded video)
- plain loop: lrfp's public sampler and detector only: `probe_video`, `sample_frames` every 0.5 s, and
              `FrameDetector.detect` with the default settings (BlazeFace, tiles auto = frame + 3x2 tiles);
              nothing tracked or stored
- fetch:      `process_video_file` with the default FetchConfig: the same sampling and detection plus
              filtering, tracking, cropping, PNG/JPEG encoding and storing into a real store (everything
              `lrfp fetch` does after the download)

Goals (issue 15): fetch >= 12x real time on one core; fetch's own work <= 20% on top of the plain loop.
Only public functions of lrfp are used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from lrfp.machine import cpu_name
from perf.clips import arcade_480p

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"


def pin_one_core() -> str:
    import cv2

    cv2.setNumThreads(1)
    try:
        core = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {core})
        return f"core {core}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def decode(path: Path) -> dict:
    import cv2

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return {"frames": n, "seconds": time.perf_counter() - t0}


def plain_loop(path: Path) -> dict:
    from lrfp.fetch.config import FetchConfig
    from lrfp.fetch.detect import FrameDetector, resolve_detector
    from lrfp.fetch.detectors.tiles import parse_tiles
    from lrfp.fetch.frames import probe_video, sample_frames

    cfg = FetchConfig(models_dir=MODELS)
    resolved = resolve_detector(cfg.detector, parse_tiles(cfg.tiles), cfg.min_score, cfg.models_dir)
    t0 = time.perf_counter()
    info = probe_video(path)
    n = faces = 0
    with FrameDetector(resolved.settings) as det:
        frames = sample_frames(path, info, cfg.every_s, threads=1)
        for f in frames:
            faces += sum(1 for d in det.detect(f.image) if d.score >= cfg.min_score)
            n += 1
    return {"sampled": n, "faces": faces, "seconds": time.perf_counter() - t0, "video_s": info.duration_s}


def fetch(path: Path) -> dict:
    from lrfp.fetch import FetchConfig, process_video_file
    from lrfp.fetch.detect import close_idle_detectors, resolve_detector
    from lrfp.fetch.detectors.tiles import parse_tiles
    from lrfp.manifest import ManifestRow
    from lrfp.store import open_store

    cfg = FetchConfig(models_dir=MODELS)
    resolved = resolve_detector(cfg.detector, parse_tiles(cfg.tiles), cfg.min_score, cfg.models_dir)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "data") as store:
        row = ManifestRow(line=0, url=f"file://{path}", name="bench")
        t0 = time.perf_counter()
        res = process_video_file(store, row, path, cfg, resolved, threads=1)
        close_idle_detectors()  # as `lrfp fetch` does at the end of a run
        dt = time.perf_counter() - t0
        video_s = store.find_source("bench")["duration_s"]
    return {"sampled": res.frames_sampled, "faces": res.faces_found, "tracks": res.tracks, "crops": res.crops_kept,
            "status": str(res.status), "seconds": dt, "video_s": video_s}


def measure(path: Path, repeat: int) -> dict:
    """Round robin in this process (pinned to one core): decode, plain loop, fetch; `repeat` times."""
    import mediapipe.tasks.python.vision  # noqa: F401  imported once per process, not per video: not timed

    pinned = pin_one_core()
    runs: dict[str, list[dict]] = {"decode": [], "plain": [], "fetch": []}
    for _ in range(repeat):
        runs["decode"].append(decode(path))
        runs["plain"].append(plain_loop(path))
        runs["fetch"].append(fetch(path))
    return {"pinned": pinned, "runs": runs}


def summary(m: dict) -> dict:
    video_s = m["runs"]["fetch"][0]["video_s"]
    best = {k: min(r["seconds"] for r in v) for k, v in m["runs"].items()}
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in m["runs"].items()}
    return {
        "video_s": video_s, "best_s": best, "median_s": med,
        "x_realtime_best": {k: video_s / v for k, v in best.items()},
        "x_realtime_median": {k: video_s / v for k, v in med.items()},
        "fetch_over_plain_pct_best": 100 * (best["fetch"] / best["plain"] - 1),
        "fetch_over_plain_pct_median": 100 * (med["fetch"] / med["plain"] - 1),
        "sampled": m["runs"]["fetch"][0]["sampled"], "faces": m["runs"]["fetch"][0]["faces"],
        "crops": m["runs"]["fetch"][0]["crops"], "pinned": m["pinned"],
    }


def markdown(s: dict, repeat: int, command: str) -> str:
    rows = [("decode (grab every frame)", "decode"), ("plain loop: sample + tiled detection", "plain"),
            ("lrfp fetch after the download (process_video_file)", "fetch")]
    lines = [f"One 854x480 30 fps clip, {s['video_s']:.1f} s, every 0.5 s ({s['sampled']} frames sampled, "
             f"{s['faces']} faces kept, {s['crops']} crops stored); one process pinned to one core ({s['pinned']}), "
             f"fastest and median of {repeat} round-robin runs.", "",
             "| what | fastest s | x real time | median s | x real time (median) |", "|---|---|---|---|---|"]
    for label, k in rows:
        lines.append(f"| {label} | {s['best_s'][k]:.2f} | {s['x_realtime_best'][k]:.1f}x | {s['median_s'][k]:.2f} | "
                     f"{s['x_realtime_median'][k]:.1f}x |")
    lines += ["", f"lrfp's own work on top of the plain loop: {s['fetch_over_plain_pct_best']:+.0f}% (fastest runs), "
              f"{s['fetch_over_plain_pct_median']:+.0f}% (medians). Goals: fetch >= 12x real time, own work <= 20%.", "",
              f"Machine: {cpu_name()}, {os.cpu_count()} cores shared with other jobs; "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}.",
              f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seconds", type=float, default=14.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clip = arcade_480p(Path(tmp) / "arcade480p30.mp4", fps=30, seconds=a.seconds)
        m = measure(clip, a.repeat)
    s = summary(m)
    command = "python -m perf.fetch_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.json:
        a.json.write_text(json.dumps({"summary": s, "runs": m["runs"]}, indent=1, default=str))
    text = markdown(s, a.repeat, command.strip())
    if a.markdown:
        a.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
