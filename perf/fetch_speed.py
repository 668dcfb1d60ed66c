"""How fast `lrfp fetch` processes video, beside the two pieces of necessary work measured alone.

Not a test: run it by hand and paste the table into the README.

    .venv/bin/python -m perf.fetch_speed [--out results.json] [--skip-workers]

For each clip (the three in ../shared/data/videos, a 480p copy of the 1080p arcade clip, and a 480p 30 fps
clip made from it, 14 s long) at the default settings (--every 0.5, full-range BlazeFace), each in a fresh
process pinned to one CPU core:

- decode:   OpenCV grab() of every frame of the file (the least any sampler must do for inter-coded video)
- detect:   MediaPipe detection alone on the sampled frames (decoded and converted beforehand), plus
            setup: creating, warming and closing the detector, which a one-video run does once (a run of
            several videos, or a worker process, shares one detector between its videos)
            (reported apart as detect_setup_s; overhead_excl_setup_pct leaves it out of the necessary work)
- pipeline: lrfp's frame loop (sampling, conversion, detection, cropping, tracking, PNG/JPEG encoding,
            hashing and storing into a real store), i.e. everything after the download
- plain loop: sample (grab/retrieve), convert to RGB, detect; nothing stored (the issue's "plain
            decode-and-detect loop")
- overhead: pipeline / (decode + detect) - 1       goal: <= 25 %; over_plain_loop: pipeline / plain loop - 1
- fixed:    the pipeline on the first 0.5 s only (detector creation, first inference, opening store and file):
            a per-video cost that long videos amortize; overhead_excl_fixed leaves it out
- x realtime: video seconds per wall second of the pipeline    goal: >= 30 on the 480p 30 fps clip
- peak RSS of the process (ru_maxrss)

Each number is the fastest of --repeat runs (3), taken round robin (decode, detect, plain, pipeline, again ...):
the machine is shared, and slower runs measure the neighbours. The medians of the plain loop and the pipeline
are reported too.

Then `lrfp fetch` end to end (yt-dlp download from a local HTTP server included) on eight 56 s 480p 30 fps clips
with --workers 1, --workers 1 pinned to one core, and --workers 2: the speed-up (goal: near 2 on 2 cores).
One unpinned worker already uses more than one core (FFmpeg decodes with a thread per core, and the writer
thread stores crops beside the frame loop), so the speed-up per core is the one over the pinned run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared"))
VIDEOS = SHARED / "data" / "videos"
MODELS = SHARED / "models"
EVERY = 0.5


def make_inputs(dest: Path) -> dict[str, Path]:
    """The clips to measure: the shared ones plus 480p copies of the 1080p arcade clip."""
    import cv2

    clips = {
        "arcade 1080p (--downscale)": VIDEOS / "facenet-pytorch_video.mp4",
        "corridor 480x270 GIF": VIDEOS / "intel_face-demographics-walking-and-pause.gif",
        "stage 640x360": VIDEOS / "face_recognition_short_hamilton_clip.mp4",
    }
    cap = cv2.VideoCapture(str(VIDEOS / "facenet-pytorch_video.mp4"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (854, 480), interpolation=cv2.INTER_AREA))
    cap.release()
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # MPEG-4 part 2, as in the reference measurement
    w = cv2.VideoWriter(str(dest / "arcade480.mp4"), fourcc, 25, (854, 480))
    for f in frames:
        w.write(f)
    w.release()
    clips["arcade 854x480 25 fps"] = dest / "arcade480.mp4"
    # 480p at 30 fps, 14 s: the clip played forward and back twice (no cut), re-timed to 30 fps.
    loop = (frames + frames[::-1]) * 2
    variants = {"": lambda f: f, "-flip": lambda f: cv2.flip(f, 1), "-bright": lambda f: cv2.convertScaleAbs(f, alpha=1.0, beta=12),
                "-dark": lambda f: cv2.convertScaleAbs(f, alpha=1.0, beta=-12),
                "-flip-bright": lambda f: cv2.convertScaleAbs(cv2.flip(f, 1), alpha=1.0, beta=12),
                "-flip-dark": lambda f: cv2.convertScaleAbs(cv2.flip(f, 1), alpha=1.0, beta=-12),
                "-contrast": lambda f: cv2.convertScaleAbs(f, alpha=1.1, beta=-10),
                "-soft": lambda f: cv2.convertScaleAbs(f, alpha=0.9, beta=10)}
    w = cv2.VideoWriter(str(dest / "arcade480p30.mp4"), fourcc, 30, (854, 480))
    for f in loop:
        w.write(f)
    w.release()
    clips["arcade 854x480 30 fps, 14 s"] = dest / "arcade480p30.mp4"
    # 56 s versions (4 x the 14 s loop), in eight looks so that their crops differ: for --workers.
    for suffix, fn in variants.items():
        w = cv2.VideoWriter(str(dest / f"arcade480p30-long{suffix}.mp4"), fourcc, 30, (854, 480))
        for f in loop * 4:
            w.write(fn(f))
        w.release()
    clips["arcade 854x480 30 fps, 56 s"] = dest / "arcade480p30-long.mp4"
    return clips


# -- measurements, each run in its own process (--one) --------------------------------------------------


def _pin_one_core() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def measure_decode(path: Path) -> dict:
    from lrfp.fetch.frames import open_capture

    t0 = time.perf_counter()
    cap = open_capture(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return {"frames": n, "seconds": time.perf_counter() - t0}


def measure_detect(path: Path, downscale: bool) -> dict:
    import cv2

    from lrfp.fetch.detect import FaceDetector
    from lrfp.fetch.frames import probe_video, sample_frames

    import mediapipe.tasks.python.vision  # noqa: F401  once per process, not per video: not timed

    info = probe_video(path, downscale)
    rgbs = [cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB) for f in sample_frames(path, info, EVERY)]
    t0 = time.perf_counter()
    det = FaceDetector(MODELS / "face_detection_full_range_sparse.tflite", 0.5)
    t1 = time.perf_counter()
    det.detect(rgbs[0])  # the first call allocates
    t2 = time.perf_counter()
    faces = sum(len(det.detect(rgb)) for rgb in rgbs)
    t3 = time.perf_counter()
    det.close()
    t4 = time.perf_counter()
    per_frame = (t3 - t2) / len(rgbs)
    # Setup: creating and closing the detector, and the first call's extra time over a steady one.
    setup = (t1 - t0) + max(0.0, (t2 - t1) - per_frame) + (t4 - t3)
    return {"sampled": len(rgbs), "faces": faces, "seconds": t3 - t2, "setup_s": setup, "ms_per_frame": 1000 * per_frame}


def measure_plain(path: Path, downscale: bool) -> dict:
    """A plain decode-and-detect loop (sample, convert, detect; nothing stored): the floor for the pipeline."""
    import cv2

    from lrfp.fetch.detect import FaceDetector
    from lrfp.fetch.frames import probe_video, sample_frames

    import mediapipe.tasks.python.vision  # noqa: F401  not timed, as in measure_pipeline

    t0 = time.perf_counter()
    info = probe_video(path, downscale)
    n = faces = 0
    with FaceDetector(MODELS / "face_detection_full_range_sparse.tflite", 0.5) as det:
        for f in sample_frames(path, info, EVERY):
            faces += len(det.detect(cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB)))
            n += 1
    return {"sampled": n, "faces": faces, "seconds": time.perf_counter() - t0}


def measure_pipeline(path: Path, downscale: bool, end_s: float | None = None) -> dict:
    from lrfp.fetch import DownloadOptions, FetchConfig, process_video_file
    from lrfp.fetch.detect import close_idle_detectors
    from lrfp.fetch.models import resolve_model
    from lrfp.manifest import ManifestRow
    from lrfp.store import open_store

    import mediapipe.tasks.python.vision  # noqa: F401  once per process, not per video: not timed

    cfg = FetchConfig(every_s=EVERY, models_dir=MODELS, download=DownloadOptions(downscale=downscale))
    model = resolve_model(cfg.model, MODELS)
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "data") as store:
        row = ManifestRow(line=0, url=f"file://{path}", name="bench", end_s=end_s)
        t0 = time.perf_counter()
        res = process_video_file(store, row, path, cfg, model)  # probe, frame loop, crops stored, status
        close_idle_detectors()  # as `lrfp fetch` does at the end: a one-video run creates and closes its detector
        dt = time.perf_counter() - t0
        video_s = store.find_source("bench")["duration_s"]
    return {"sampled": res.frames_sampled, "faces": res.faces_found, "tracks": res.tracks, "crops": res.crops_kept,
            "video_s": video_s, "seconds": dt}


def run_one(kind: str, path: Path, downscale: bool, end_s: float | None = None) -> dict:
    """Runs one measurement in a fresh process pinned to one core; adds its peak RSS."""
    args = {"decode": "", "detect": f", {downscale!r}", "plain": f", {downscale!r}", "pipeline": f", {downscale!r}, {end_s!r}"}[kind]
    code = (
        "import json, resource, sys; from pathlib import Path; import perf.fetch_speed as b; b._pin_one_core(); "
        f"r = b.measure_{kind}(Path({str(path)!r}){args}); "
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- workers scaling ------------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def measure_workers(folder: Path, names: list[str], workers: int, one_core: bool = False) -> dict:
    """`lrfp fetch --workers N` on the clips, served over HTTP; one_core pins the whole command to one core."""
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "m.csv"
            manifest.write_text("url,id\n" + "".join(
                f"http://127.0.0.1:{server.server_address[1]}/{n},v{i}\n" for i, n in enumerate(names)))
            t0 = time.perf_counter()
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            own0 = resource.getrusage(resource.RUSAGE_SELF)  # this process serves the files over HTTP meanwhile
            proc = subprocess.run(
                [sys.executable, "-c", "from lrfp.cli import main; main()", "fetch", str(manifest), "-d", f"{tmp}/data",
                 "--models-dir", str(MODELS), "--workers", str(workers)],
                capture_output=True, text=True, cwd=REPO, preexec_fn=_pin_one_core if one_core else None,
            )
            dt = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            own1 = resource.getrusage(resource.RUSAGE_SELF)
            server_cpu = (own1.ru_utime - own0.ru_utime) + (own1.ru_stime - own0.ru_stime)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
    finally:
        server.shutdown()
        server.server_close()
    # cpu_s / seconds = cores actually used (other users of the machine take the rest)
    # server_cpu_s: the local HTTP server's share of the same 2 cores (a remote server would cost lrfp nothing)
    return {"workers": workers, "one_core": one_core, "videos": len(names), "seconds": dt, "cpu_s": cpu,
            "server_cpu_s": server_cpu}


# -- the report -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--skip-workers", action="store_true", help="skip the --workers 1 vs 2 comparison")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    args = ap.parse_args(argv)

    load = os.getloadavg()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_inputs(Path(tmp))
        for label, path in clips.items():
            downscale = "1080p" in label
            # Round robin (decode, detect, plain, pipeline, fixed; again ...): every measurement sees the same
            # spells of a noisy machine, so their ratios are fair.
            runs: dict[str, list[dict]] = {k: [] for k in ("decode", "detect", "plain", "pipeline", "fixed")}
            for _ in range(args.repeat):
                for kind in runs:
                    # fixed: the pipeline on one sampled frame, i.e. its per-video cost
                    runs[kind].append(run_one("pipeline", path, downscale, EVERY) if kind == "fixed"
                                      else run_one(kind, path, downscale))
            dec, det, plain, pipe, fixed = (min(runs[k], key=lambda r: r["seconds"]) for k in runs)
            pipe_median = statistics.median(r["seconds"] for r in runs["pipeline"])
            plain_median = statistics.median(r["seconds"] for r in runs["plain"])
            video_s = pipe["video_s"] or dec["frames"] / 25
            # Detection alone includes the detector's one-time setup (created, warmed, closed once in a one-video run,
            # as the pipeline must); without it the overhead is the *_excl_setup columns.
            necessary = dec["seconds"] + det["seconds"] + det["setup_s"]
            necessary_excl_setup = dec["seconds"] + det["seconds"]
            rows.append({
                "clip": label, "video_s": round(video_s, 2), "sampled": pipe["sampled"], "faces": pipe["faces"],
                "crops": pipe["crops"], "decode_s": round(dec["seconds"], 3), "detect_s": round(det["seconds"], 3),
                "detect_setup_s": round(det["setup_s"], 3),
                "detect_ms_per_frame": round(det["ms_per_frame"], 2), "pipeline_s": round(pipe["seconds"], 3),
                "sampled_per_s": round(pipe["sampled"] / pipe["seconds"], 1),
                "x_realtime": round(video_s / pipe["seconds"], 1),
                "x_realtime_median": round(video_s / pipe_median, 1),
                "plain_loop_x_realtime_median": round(video_s / plain_median, 1),
                "decode_detect_x_realtime": round(video_s / necessary, 1),
                "overhead_pct": round(100 * (pipe["seconds"] / necessary - 1), 1),
                "overhead_excl_setup_pct": round(100 * (pipe["seconds"] / necessary_excl_setup - 1), 1),
                "plain_loop_s": round(plain["seconds"], 3),
                "plain_loop_x_realtime": round(video_s / plain["seconds"], 1),
                "over_plain_loop_pct": round(100 * (pipe["seconds"] / plain["seconds"] - 1), 1),
                "fixed_s": round(fixed["seconds"], 3),
                "overhead_excl_fixed_pct": round(100 * ((pipe["seconds"] - fixed["seconds"]) / necessary_excl_setup - 1), 1),
                "peak_rss_mb": round(pipe["peak_rss_mb"], 1),
            })
        scaling = []
        if not args.skip_workers:
            names = sorted(p.name for p in Path(tmp).glob("arcade480p30-long*.mp4"))
            for w, one_core in ((1, False), (1, True), (2, False)):
                scaling.append(min((measure_workers(Path(tmp), names, w, one_core) for _ in range(max(1, args.repeat - 1))),
                                   key=lambda r: r["seconds"]))
    load_after = os.getloadavg()

    print(f"machine: {machine}")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"settings: --every {EVERY}, full-range BlazeFace, one core per measurement, fastest (and median) of {args.repeat}, round robin\n")
    cols = ["clip", "video_s", "sampled", "crops", "decode_s", "detect_s", "detect_setup_s", "plain_loop_s", "pipeline_s",
            "overhead_pct", "overhead_excl_setup_pct",
            "over_plain_loop_pct", "fixed_s", "overhead_excl_fixed_pct", "plain_loop_x_realtime",
            "plain_loop_x_realtime_median", "sampled_per_s", "x_realtime", "x_realtime_median", "decode_detect_x_realtime",
            "peak_rss_mb"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if scaling:
        base, core = scaling[0]["seconds"], scaling[1]["seconds"]
        print(f"\n| lrfp fetch, {scaling[0]['videos']} x 56 s 480p30 clips, local HTTP | wall s | speed-up over --workers 1 "
              "| over --workers 1 on one core | CPU s | cores used | HTTP server CPU s |\n|---|---|---|---|---|---|---|")
        for s in scaling:
            name = f"--workers {s['workers']}" + (" (pinned to one core)" if s["one_core"] else "")
            print(f"| {name} | {s['seconds']:.1f} | {base / s['seconds']:.2f} | {core / s['seconds']:.2f} | {s['cpu_s']:.1f} "
                  f"| {s['cpu_s'] / s['seconds']:.2f} | {s['server_cpu_s']:.1f} |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "load_before": load, "load_after": load_after,
                                        "clips": rows, "workers": scaling}, indent=2))


if __name__ == "__main__":
    main()
