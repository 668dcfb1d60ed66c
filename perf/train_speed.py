"""Speed benchmark (a script, not a test): lrfp's training loop against the plain DataLoader loop.

Per model it trains a few epochs both ways, alternating, on the same split and machine, and reports the
fastest epoch's training images/s of each (load from other jobs only slows epochs down);
from those it extrapolates the whole grid (every config x seeds x epochs). With --grid it also runs the
real `lrfp bench` grid (concurrent runs included) and times it end to end.

    python -m perf.train_speed -d /tmp/benchstore --protocol quick --epochs 2 --workers 2
    python -m perf.train_speed -d store --protocol thesis --device cuda --workers 8 --grid --out speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from perf import torch_device, write_result


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def lrfp_trainer(run_cfg, data):
    """A callable that trains one epoch with the engine's own loop and returns images, seconds, images/s."""
    from benchmark.engine import TrainStep, make_optimizer, to_device, train_one_epoch
    from benchmark.registry import create_model

    torch.manual_seed(run_cfg.seed)
    model = create_model(run_cfg.model, norm=run_cfg.norm, input_size=run_cfg.input_size)
    mf = torch.channels_last if run_cfg.channels_last else torch.contiguous_format
    model = model.to(run_cfg.device, memory_format=mf)
    opt = make_optimizer(model, run_cfg)
    step = TrainStep(model, opt, run_cfg)  # lives across epochs, as in engine.run (a CUDA graph is captured once)
    gen = torch.Generator(device=run_cfg.device)
    gen.manual_seed(0)
    x, y = to_device(data.subsets["train"], run_cfg.input_size, run_cfg.device)

    def one_epoch() -> dict[str, float]:
        s = train_one_epoch(model, opt, x, y, run_cfg, gen, step)
        return {"images": s["images"], "seconds": s["seconds"], "images_per_s": s["images"] / s["seconds"]}

    return one_epoch


def fastest(epochs: list[dict[str, float]]) -> float:
    """Images/s of the fastest epoch: other jobs on a shared machine only ever slow an epoch down."""
    return max(e["images_per_s"] for e in epochs)


def compare_loops(runs: list, data: Any, device: str, args: argparse.Namespace, result: dict) -> None:
    """Per run (one seed of each config): lrfp's loop vs the plain DataLoader loop, each row appended to
    result["models"] (and printed on stderr) as soon as it is measured."""
    from perf.dataloader_baseline import dataloader_trainer, export_image_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = export_image_folder(data.subsets["train"], Path(tmp) / "train") if runs else None
        for r in runs:
            ours = lrfp_trainer(r, data)
            plain = dataloader_trainer(r.model, r.norm, folder, r.input_size, device=device, workers=args.workers,
                                       batch_size=r.batch_size, lr=r.lr, rotation_degrees=r.rotation_degrees)
            ours(), plain()  # warm-up: allocator, oneDNN/cuDNN kernels, DataLoader workers
            timed_ours, timed_plain = [], []
            for _ in range(args.epochs):  # alternate, so that a burst of load hits both loops alike
                timed_ours.append(ours())
                timed_plain.append(plain())
            row = {"config": r.config_name, "input_size": r.input_size, "lrfp_precision": "bf16" if r.amp else "fp32",
                   "lrfp_channels_last": r.channels_last, "lrfp_images_per_s": round(fastest(timed_ours), 1),
                   "dataloader_images_per_s": round(fastest(timed_plain), 1)}
            row["speedup"] = round(row["lrfp_images_per_s"] / row["dataloader_images_per_s"], 2)
            result["models"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            del ours, plain


def extrapolate(result: dict, runs: list, per_run_images: int, seeds: int) -> None:
    """The grid's training seconds both ways, from the configs measured in result["models"]: each run is
    per_run_images (train set x epochs x seeds); a comparison cut short extrapolates only the configs it has
    and says so (`grid_configs_measured` < `grid_configs`)."""
    measured = result["models"]
    result["grid_runs"] = len(runs) * seeds
    result["grid_configs"], result["grid_configs_measured"] = len(runs), len(measured)
    for loop in ("lrfp", "dataloader"):
        result[f"grid_{loop}_seconds_extrapolated"] = (
            round(sum(per_run_images / m[f"{loop}_images_per_s"] for m in measured), 1) if measured else None)


def time_grid(cfg: Any, device: str, args: argparse.Namespace, result: dict) -> None:
    """The real grid with `lrfp bench`, timed end to end. Cut short, it raises KeyboardInterrupt after
    recording the seconds so far (`grid_lrfp_seconds_until_stopped`); the finished runs' rows stay in --grid-out."""
    from benchmark.harness import BenchConfig, run_bench

    result["grid_stack_seeds"], result["grid_cuda_graph"] = args.stack_seeds, args.cuda_graph
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        try:
            res = run_bench(BenchConfig(data_dir=cfg.data_dir, split=args.split, protocol=args.protocol,
                                        models=cfg.models, device=device, pretrained=False, seeds=args.seeds,
                                        jobs=args.jobs, precision=args.precision, stack_seeds=args.stack_seeds,
                                        cuda_graph=args.cuda_graph,
                                        out=Path(args.grid_out) if args.grid_out else Path(tmp) / "grid"))
        except KeyboardInterrupt:
            result["grid_lrfp_seconds_until_stopped"] = round(time.perf_counter() - t0, 1)
            raise
        result["grid_lrfp_seconds_measured"] = round(time.perf_counter() - t0, 1)
        result["grid_rows"] = len(res.rows)
        result["grid_jobs"] = res.meta.get("jobs")


def main(argv: list[str] | None = None) -> dict:
    from benchmark.data import load_store_split
    from benchmark.harness import BenchConfig, choose_precision, device_name, plan_runs, resolve_precision
    from benchmark.protocols import get_protocol

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--data-dir", default="lrfp-data")
    ap.add_argument("--split")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--model", action="append", help="default: every registered model")
    ap.add_argument("--epochs", type=int, default=3,
                    help="timed epochs per model and loop, alternating the two loops (after one warm-up each); the fastest counts")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers of the plain loop")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--precision", default="auto", help="lrfp's loop: auto, bf16 or fp32 (the plain loop is always fp32)")
    ap.add_argument("--seeds", type=int, help="seeds in the extrapolated grid (default: the protocol's)")
    ap.add_argument("--grid", action="store_true", help="also run and time the real grid with `lrfp bench`")
    ap.add_argument("--grid-only", action="store_true", help="only the real grid (no per-model comparison)")
    ap.add_argument("--stack-seeds", action="store_true", help="the grid with `lrfp bench --stack-seeds`")
    ap.add_argument("--cuda-graph", action="store_true", help="lrfp's loop (and the grid) with `lrfp bench --cuda-graph`")
    ap.add_argument("--jobs", type=int, help="concurrent runs for --grid")
    ap.add_argument("--grid-out", help="keep the --grid run's results (results.md, plots, checkpoints) in this folder")
    ap.add_argument("--out", help="write the numbers as JSON here")
    args = ap.parse_args(argv)

    device = torch_device(args.device, args.threads)
    protocol = get_protocol(args.protocol)
    cfg = BenchConfig(data_dir=Path(args.data_dir), split=args.split, protocol=args.protocol,
                      models=tuple(args.model or ()), device=device, pretrained=False, seeds=args.seeds,
                      precision=args.precision, cuda_graph=args.cuda_graph)
    runs = [r for r in plan_runs(cfg, protocol, device) if r.seed == 0]
    if resolve_precision(args.precision, device) is None:  # auto on a CPU: the bench's own timed probe
        runs = choose_precision(runs, lambda event: print(event, file=sys.stderr))
    data = load_store_split(cfg.data_dir, cfg.split)
    n_train = len(data.subsets["train"])
    result = {
        "machine": f"{device_name(device)}", "device": device, "torch": torch.__version__, "platform": platform.platform(),
        "load_before": _load(), "threads": torch.get_num_threads(), "n_train": n_train, "protocol": protocol.name,
        "timed_epochs": args.epochs, "workers": args.workers, "models": [],
    }
    if args.grid_only:
        runs, args.grid = [], True
    # One run per config and seed of protocol.epochs epochs over the train set (validation/test passes excluded).
    per_run_images = n_train * protocol.epochs * (args.seeds or protocol.seeds)
    try:  # stopped early (Ctrl-C, or gpu_check.sh's time limit: SIGINT), it still writes what it measured
        compare_loops(runs, data, device, args, result)
        extrapolate(result, runs, per_run_images, args.seeds or protocol.seeds)
        if args.grid:
            time_grid(cfg, device, args, result)
    except KeyboardInterrupt:
        result["interrupted"] = True
        extrapolate(result, runs, per_run_images, args.seeds or protocol.seeds)
        print("interrupted: writing what was measured so far", file=sys.stderr, flush=True)
    result["load_after"] = _load()
    try:
        result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
