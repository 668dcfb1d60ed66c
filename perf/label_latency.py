"""Latency of `lrfp label`: from a key press to the next crop written to the terminal, 10,000 crops in the store.

Goal: p95 under 50 ms. Two ways to run the app:

  headless  Textual's headless driver through the pilot (the whole app, its store queries and its
            compositor; the output is discarded instead of written to a tty).
  tmux      the real Linux driver in a tmux pane: keys sent with `tmux send-keys`, frames written to
            the pane's pty. The app runs in a child (`--serve`) that logs each latency to a file.

Latency = (time the app has written the frame that shows the new crop) - (time the key event was
created from the input). Usage:

  python -m perf.label_latency                       # builds /tmp/lrfp-latency-store once, both modes
  python -m perf.label_latency --mode headless --keys 300 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lrfp.machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
SMFD = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared")) / "data" / "smfd"
SIZE = (120, 40)


def build_store(data_dir: Path, n: int, labeled_fraction: float = 0.5, seed: int = 0) -> None:
    """n distinct crops (SMFD faces at 24-48 px with a little noise so each PNG is unique), half labeled."""
    from PIL import Image

    from lrfp.images import encode_png, load_rgb
    from lrfp.store import CropOrigin, open_store

    rng = random.Random(seed)
    with open(SMFD / "smfd_groups.csv", newline="") as fh:
        files = [SMFD / r["class"] / r["file"] for r in csv.DictReader(fh)]
    faces = []
    for path in files[:200]:
        im = load_rgb(path.read_bytes())
        side = rng.randint(24, 48)
        faces.append(im.resize((side, max(1, round(side * im.height / im.width))), Image.Resampling.BOX))
    with open_store(data_dir) as store:
        sources = [store.upsert_source(f"cam-{i}", "video", status="ok") for i in range(10)]
        with store.transaction():
            for i in range(n):
                im = faces[i % len(faces)].copy()
                im.putpixel((i % im.width, (i // im.width) % im.height), (i % 256, (i // 256) % 256, 7))
                label = rng.choice(("with_mask", "without_mask")) if rng.random() < labeled_fraction else None
                store.add_crop(
                    sources[i % 10], encode_png(im), im.width, im.height,
                    CropOrigin(time_s=i * 0.5, frame_index=i, score=0.9, detector="bench"),
                    label=label, annotator="bench", label_kind="label", conn_in_transaction=True,
                )


def summarize(ms: list[float]) -> dict[str, float]:
    xs = sorted(ms)

    def pct(q: float) -> float:
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    return {"n": len(xs), "p50_ms": round(pct(0.5), 2), "p95_ms": round(pct(0.95), 2),
            "p99_ms": round(pct(0.99), 2), "max_ms": round(xs[-1], 2), "mean_ms": round(statistics.fmean(xs), 2)}


def run_headless(data_dir: Path, keys: int, grid: bool) -> tuple[list[float], float]:
    """Latencies in ms, and the app's CPU ms per key (pilot included): the latency a free core would give."""
    from lrfp.label.app import LabelApp
    from lrfp.label.session import LabelConfig, LabelSession
    from lrfp.store import open_store

    samples: list[float] = []
    cpu: list[float] = []

    async def go() -> None:
        with open_store(data_dir) as store:
            session = LabelSession(store, LabelConfig(annotator="bench-headless"))
            app = LabelApp(session, grid=grid, latency_probe=lambda k, d, c: samples.append((d - k) * 1000))
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                samples.clear()
                cpu.append(time.process_time())
                for i in range(keys):
                    key = "m" if i % 2 else "n"
                    if grid and i % 18 == 17:
                        key = "enter"
                    await pilot.press(key)
                    while len(samples) < i + 1:
                        await pilot.pause(0.001)
                cpu.append(time.process_time())

    asyncio.run(go())
    return samples, (cpu[1] - cpu[0]) * 1000 / keys


def serve(data_dir: Path, log: Path) -> None:
    """The app on the real terminal (inside tmux), appending one latency in ms per line to `log`."""
    from lrfp.label.app import LabelApp
    from lrfp.label.session import LabelConfig, LabelSession
    from lrfp.store import open_store

    with open_store(data_dir) as store, open(log, "a", buffering=1) as out:
        session = LabelSession(store, LabelConfig(annotator="bench-tmux"))
        app = LabelApp(session, latency_probe=lambda k, d, c: out.write(f"{(d - k) * 1000:.3f}\n"))
        app.run()


def run_tmux(data_dir: Path, keys: int, interval_s: float) -> list[float]:
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed: use --mode headless")
    log = data_dir.parent / "latency-tmux.log"
    log.unlink(missing_ok=True)
    name = f"lrfp-latency-{os.getpid()}"
    cmd = f"{sys.executable} -m perf.label_latency --serve --data-dir {data_dir} --log {log}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-c", str(REPO),
                    cmd], check=True)
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)  # the first line is the first crop drawn at start
        time.sleep(0.5)
        start = len(log.read_text().splitlines())
        for i in range(keys):
            subprocess.run(["tmux", "send-keys", "-t", name, "m" if i % 2 else "n"], check=True)
            time.sleep(interval_s)
        time.sleep(1)
        lines = log.read_text().splitlines()[start:]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], check=False)
    return [float(x) for x in lines]


def machine() -> dict[str, str]:
    cpu = cpu_name()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(), "uptime": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/lrfp-latency-store/data"))
    ap.add_argument("--crops", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=300)
    ap.add_argument("--mode", choices=("headless", "tmux", "both"), default="both")
    ap.add_argument("--interval", type=float, default=0.15, help="seconds between tmux key presses")
    ap.add_argument("--json", type=Path, help="also write the result rows here")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.data_dir, args.log)
        return

    from lrfp.store import open_store

    if not (args.data_dir / "lrfp.sqlite").exists():
        t = time.perf_counter()
        build_store(args.data_dir, args.crops)
        print(f"built {args.crops} crops in {time.perf_counter() - t:.1f} s at {args.data_dir}", file=sys.stderr)
    with open_store(args.data_dir) as store:
        n_crops = store.count_crops()
        unlabeled = store.count_unlabeled()
    if unlabeled < args.keys * 2 + 50:
        raise SystemExit(f"only {unlabeled} unlabeled crops left in {args.data_dir}: delete it to rebuild")

    rows = []
    modes = [("headless single", "headless", False), ("headless grid", "headless", True), ("tmux single", "tmux", False)]
    for name, mode, grid in modes:
        if args.mode not in (mode, "both"):
            continue
        before = machine()["uptime"]
        if mode == "headless":
            ms, cpu_per_key = run_headless(args.data_dir, args.keys, grid)
        else:
            ms, cpu_per_key = run_tmux(args.data_dir, args.keys, args.interval), None
        row = {"mode": name, "crops_in_store": n_crops, "terminal": f"{SIZE[0]}x{SIZE[1]}", **summarize(ms),
               "cpu_ms_per_key": None if cpu_per_key is None else round(cpu_per_key, 2),
               "goal_p95_ms": 50, "load_before": before, **machine()}
        rows.append(row)
        print(f"{name:16s} n={row['n']:4d}  p50 {row['p50_ms']:6.1f} ms  p95 {row['p95_ms']:6.1f} ms  "
              f"p99 {row['p99_ms']:6.1f} ms  max {row['max_ms']:6.1f} ms  "
              + (f"cpu/key {cpu_per_key:5.1f} ms  " if cpu_per_key is not None else "")
              + f"({'meets' if row['p95_ms'] < 50 else 'MISSES'} the 50 ms p95 goal)")
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; {m['uptime']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
