"""How fast `lrfp predict` runs on a 480p video on one CPU core, split into decode, detect and classify time.

Not a test: run it by hand and copy the table into docs/predict.md ("Speed").

    .venv/bin/python -m perf.predict_speed [--repeat 3] [--out results.json]

The video: the shared 1080p arcade clip (people walking towards the camera) resized to 854x480 with OpenCV and
played forwards, backwards, forwards (12.6 s, 25 fps), so that a run is long enough to time.
The checkpoints, in the format `lrfp bench` writes:
- model3 at 64 px (the thesis's Model 3 input), trained here for 1 epoch on an SMFD store by `lrfp bench`;
- resnet18 at 224 px (the heaviest thesis input; random weights: speed does not depend on the weights).
Each case runs `lrfp.predict.video_target.predict_video` (what `lrfp predict VIDEO` runs: fetch's sampling and
default detector and tiles, then batched classification) in a fresh process pinned to one CPU core
(sched_setaffinity; torch and OpenCV set to one thread), at the default --every 0.5 and, for Model 3, at every
frame (--every 0.04); the crops of up to 16 frames are handed to the classifier together, which runs them in
forward passes of --batch-size crops: the default (8 on a CPU), 1 (one pass per face) and 64. Each number is
the fastest of --repeat runs. "other" is the rest of the wall time: probing the file twice, checking the
detector file's sha256, creating the detector, and writing the outputs ("write": CSV, Parquet, PNG).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from lrfp.machine import cpu_name
from perf.clips import arcade_480p

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"


def make_checkpoints(work: Path) -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    import torch
    from bench_helpers import grouped_split
    from conftest import build_store

    from benchmark.engine import CHECKPOINT_FORMAT
    from benchmark.harness import BenchConfig, run_bench
    from benchmark.registry import create_model
    from lrfp import LABELS, __version__

    data = work / "data"
    store = build_store(data, SHARED / "data" / "smfd", n_groups=40)
    grouped_split(store)
    store.close()
    run_bench(BenchConfig(data_dir=data, out=work / "bench", models=("model3",), protocol="quick", epochs=1,
                          input_size=64, seeds=1, device="cpu"))
    r18 = work / "resnet18.pt"
    model = create_model("resnet18", pretrained=False, input_size=224)
    torch.save({"checkpoint_format": CHECKPOINT_FORMAT, "lrfp_version": __version__, "state_dict": model.state_dict(),
                "config": {"model": "resnet18", "norm": None}, "classes": list(LABELS), "input_size": 224,
                "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}, r18)
    return {"model3@64": work / "bench" / "checkpoints" / "model3.pt", "resnet18@224": r18}


CHILD = r"""
import json, os, sys, time
os.sched_setaffinity(0, {0})
import cv2, torch
cv2.setNumThreads(1); torch.set_num_threads(1)
from pathlib import Path
from lrfp.predict.checkpoint import load_checkpoint
from lrfp.predict.faces import FaceSettings
from lrfp.predict.infer import Classifier
from lrfp.predict.video_target import VideoPredictConfig, predict_video
ckpt, video, every, batch, out, models = sys.argv[1:7]
clf = Classifier(load_checkpoint(Path(ckpt)), "cpu", int(batch) or None)
clf.predict_proba([__import__("numpy").zeros((40, 40, 3), "uint8")])  # warm-up: first-call setup is not per video
clf.seconds = clf.preprocess_seconds = 0.0
r = predict_video(video, clf, VideoPredictConfig(out_dir=Path(out), faces=FaceSettings(every_s=float(every), models_dir=Path(models))))
print(json.dumps({"video_s": r.video_s, "wall_s": r.wall_s, "decode_s": r.decode_s, "detect_s": r.detect_s,
                  "classify_s": r.classify_s, "preprocess_s": clf.preprocess_seconds, "write_s": r.write_s,
                  "frames": r.frames, "faces": r.faces, "tracks": len(r.tracks)}))
"""


def run_case(ckpt: Path, video: Path, every: float, batch: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", CHILD, str(ckpt), str(video), str(every), str(batch), str(out), str(MODELS)],
                       capture_output=True, text=True, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = arcade_480p(work / "arcade480.mp4")
        ckpts = make_checkpoints(work)
        rows = []
        print("| model | every s | batch | frames | faces | decode s | detect s | classify s (preprocess) | other s (write) "
              "| wall s | classify ms/face | classify % wall | x realtime |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        cases = [("model3@64", e, b) for e in (0.5, 0.04) for b in (0, 1, 64)] + [("resnet18@224", 0.5, b) for b in (0, 1, 64)]
        for name, every, batch in cases:
            ckpt = ckpts[name]
            runs = [run_case(ckpt, video, every, batch, work / "out") for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall_s"])
            other = best["wall_s"] - best["decode_s"] - best["detect_s"] - best["classify_s"]
            best.update(model=name, every_s=every, batch=batch or "default (8)", x_realtime=best["video_s"] / best["wall_s"],
                        classify_share=best["classify_s"] / best["wall_s"], other_s=other,
                        ms_per_face=1000 * best["classify_s"] / max(1, best["faces"]))
            rows.append(best)
            print(f"| {name} | {every:g} | {best['batch']} | {best['frames']} | {best['faces']} | "
                  f"{best['decode_s']:.2f} | {best['detect_s']:.2f} | {best['classify_s']:.2f} "
                  f"({best['preprocess_s']:.2f}) | {other:.2f} ({best['write_s']:.2f}) | {best['wall_s']:.2f} | "
                  f"{best['ms_per_face']:.2f} | {100 * best['classify_share']:.0f}% | {best['x_realtime']:.2f}x |", flush=True)
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"), "cpu": cpu_name(),
            "cores_used": 1, "torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "command": "python -m perf.predict_speed " + " ".join(sys.argv[1:])}
    print(json.dumps(meta))
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
