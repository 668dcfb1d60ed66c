"""lrfp's training loop against the model's bare step on tensors already in memory (a script, not a test).

The bare step is the physical limit of the loop on a machine: forward, backward and optimizer step on float
batches already normalized and on the device, no augmentation, no shuffling. lrfp's loop
(`benchmark.engine.train_one_epoch`) adds the per-epoch shuffle, the per-batch gather from the uint8 tensor,
random rotation + flip, normalization and the loss/accuracy sums. Issue 12's goal: within 10% on any CPU.
Synthetic uint8 images (no store needed); alternating rounds, the fastest of each counts (other jobs on a
shared machine only slow a round down). Also times fp32 against bf16 autocast + channels-last per model.

    python -m perf.loop_overhead --model model3 --size 64 --batches 8 --rounds 3 --out overhead.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from perf import code_version, torch_device, write_result


def bare_trainer(run_cfg, batches: int, first_conv_nchw: bool = False):
    """A callable() -> seconds for `batches` bare steps of run_cfg's model on fixed normalized batches.

    first_conv_nchw: the 3-channel first convolution (and the input) in NCHW, every other layer channels-last
    (issue 12's per-layer memory format question for Models 1-2's slow first-layer kernel on a GPU).
    """
    from benchmark.engine import make_optimizer
    from benchmark.registry import create_model

    torch.manual_seed(0)
    mf = torch.channels_last if run_cfg.channels_last else torch.contiguous_format
    model = create_model(run_cfg.model, norm=run_cfg.norm, input_size=run_cfg.input_size).to(run_cfg.device, memory_format=mf)
    if first_conv_nchw:
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first.weight.data = first.weight.data.contiguous()
        mf = torch.contiguous_format
    opt = make_optimizer(model, run_cfg)
    model = torch.compile(model, mode=run_cfg.compile) if run_cfg.compile else model
    b, s = run_cfg.batch_size, run_cfg.input_size
    xs = [torch.randn(b, 3, s, s, device=run_cfg.device).contiguous(memory_format=mf) for _ in range(batches)]
    ys = [torch.randint(0, 2, (b,), device=run_cfg.device) for _ in range(batches)]
    ctx = (lambda: torch.autocast(run_cfg.device.split(":")[0], dtype=torch.bfloat16, cache_enabled=not run_cfg.cuda_graph)
           ) if run_cfg.amp else None
    model.train()

    def step(xb: torch.Tensor, yb: torch.Tensor, set_to_none: bool) -> None:
        if ctx:
            with ctx():
                logits = model(xb)
        else:
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb)
        opt.zero_grad(set_to_none=set_to_none)
        loss.backward()
        opt.step()

    if run_cfg.cuda_graph:  # the bare step replayed as a CUDA graph too: the limit of a graphed loop
        from benchmark.cudagraph import GraphedStep

        run_step = GraphedStep(step)
    else:
        run_step = lambda xb, yb: step(xb, yb, True)  # noqa: E731

    def epoch() -> float:
        t0 = time.perf_counter()
        for xb, yb in zip(xs, ys):
            run_step(xb, yb)
        if run_cfg.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return epoch


def lrfp_trainer(run_cfg, batches: int):
    """A callable() -> seconds for one `train_one_epoch` over batches x batch_size synthetic uint8 images."""
    from benchmark.engine import TrainStep, make_optimizer, train_one_epoch
    from benchmark.registry import create_model

    torch.manual_seed(0)
    mf = torch.channels_last if run_cfg.channels_last else torch.contiguous_format
    model = create_model(run_cfg.model, norm=run_cfg.norm, input_size=run_cfg.input_size).to(run_cfg.device, memory_format=mf)
    opt = make_optimizer(model, run_cfg)
    model = torch.compile(model, mode=run_cfg.compile) if run_cfg.compile else model
    step = TrainStep(model, opt, run_cfg)  # lives across epochs, as in engine.run (a CUDA graph is captured once)
    b, s = run_cfg.batch_size, run_cfg.input_size
    gen = torch.Generator(device=run_cfg.device).manual_seed(0)
    x = torch.randint(0, 256, (b * batches, 3, s, s), dtype=torch.uint8).to(run_cfg.device)
    y = torch.randint(0, 2, (b * batches,)).to(run_cfg.device)

    def epoch() -> float:
        stats = train_one_epoch(model, opt, x, y, run_cfg, gen, step)
        epoch.fp32_retries += stats["fp32_retries"]
        return stats["seconds"]

    epoch.fp32_retries = 0  # CPU bf16 steps redone in fp32 (engine.TrainStep): each costs a second step
    return epoch


def first_conv_layouts(run_cfg, batches: int, rounds: int) -> dict:
    """Bare-step images/s with every layer channels-last vs the first convolution in NCHW (alternating rounds).

    On one core of the AMD EPYC (2026-11-30, bf16 and fp32, Models 1-bn, 2-bn and 3 at 64 px) NCHW first was
    0.50-0.78x as fast: not for CPUs. Whether it pays on a GPU is what this row is for."""
    all_cl, nchw_first = bare_trainer(run_cfg, batches), bare_trainer(run_cfg, batches, first_conv_nchw=True)
    all_cl(), nchw_first()
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(all_cl())
        tb.append(nchw_first())
    n = batches * run_cfg.batch_size
    row = {"config": run_cfg.config_name, "input_size": run_cfg.input_size, "precision": "bf16" if run_cfg.amp else "fp32",
           "all_channels_last_images_per_s": round(n / min(ta), 1), "first_conv_nchw_images_per_s": round(n / min(tb), 1)}
    row["first_conv_nchw_vs_all_channels_last"] = round(row["first_conv_nchw_images_per_s"] / row["all_channels_last_images_per_s"], 3)
    return row


def stacked_vs_separate(run_cfg, batches: int, rounds: int, k: int) -> dict:
    """Images/s of K seeds trained one after another (K train_one_epoch calls) vs as one stacked model."""
    from benchmark.registry import create_model
    from benchmark.stacked import StackedSeeds, stackable

    row = {"config": run_cfg.config_name, "input_size": run_cfg.input_size, "precision": "bf16" if run_cfg.amp else "fp32",
           "stacked_seeds": k}
    if not stackable(create_model(run_cfg.model, norm=run_cfg.norm, input_size=run_cfg.input_size)):
        return {**row, "stacked": "not stackable (Dropout)"}
    dev = run_cfg.device
    b, s = run_cfg.batch_size, run_cfg.input_size
    x = torch.randint(0, 256, (b * batches, 3, s, s), dtype=torch.uint8).to(dev)
    y = torch.randint(0, 2, (b * batches,)).to(dev)
    separate = [lrfp_trainer(run_cfg, batches) for _ in range(k)]
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(create_model(run_cfg.model, norm=run_cfg.norm, input_size=s).to(dev))
    stacked = StackedSeeds(models, run_cfg.optimizer, run_cfg.lr, run_cfg.momentum, cuda_graph=run_cfg.cuda_graph)
    gens = [torch.Generator(device=dev).manual_seed(seed) for seed in range(k)]

    def one_stacked() -> float:
        return stacked.train_one_epoch(x, y, gens, b, run_cfg.rotation_degrees, amp=run_cfg.amp,
                                       interpolation=run_cfg.rotation_interpolation)[0]["seconds"]

    one_stacked(), [f() for f in separate]  # warm-up
    ts, tk = [], []
    for _ in range(rounds):
        ts.append(sum(f() for f in separate))
        tk.append(one_stacked())
    n = b * batches * k
    row.update(separate_images_per_s=round(n / min(ts), 1), stacked_images_per_s=round(n / min(tk), 1))
    row["stacked_vs_separate"] = round(row["stacked_images_per_s"] / row["separate_images_per_s"], 3)
    return row


def _measure(args: argparse.Namespace, device: str, add: Callable[[dict], None]) -> None:
    """Every config x precision asked for: its rows, each passed to `add` as soon as it is measured."""
    from benchmark.engine import RunConfig
    from benchmark.registry import get_spec

    for name in args.model or ["model3"]:
        model, _, norm = name.partition("-")
        spec = get_spec(model)
        size = args.size or (spec.input_size if args.sizes == "thesis" else spec.quick_input_size)
        base = RunConfig(model=model, norm=norm or (spec.norms[0] if spec.norms else None), seed=0, epochs=1,
                         eval_epochs=(1,), input_size=size, optimizer=spec.optimizer, batch_size=args.batch_size,
                         device=device, channels_last=device == "cpu" and spec.cpu_channels_last, compile=args.compile,
                         cuda_graph=args.cuda_graph)
        precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
        for prec in precisions:
            cfg = replace(base, amp=True, channels_last=True) if prec == "bf16" else base
            bare, ours = bare_trainer(cfg, args.batches), lrfp_trainer(cfg, args.batches)
            bare(), ours()  # warm-up
            tb, to = [], []
            for _ in range(args.rounds):
                tb.append(bare())
                to.append(ours())
            n = args.batches * args.batch_size
            row = {"config": cfg.config_name, "input_size": size, "precision": prec, "channels_last": cfg.channels_last,
                   "compile": cfg.compile or "off", "cuda_graph": cfg.cuda_graph,
                   "bare_images_per_s": round(n / min(tb), 1), "lrfp_images_per_s": round(n / min(to), 1)}
            row["lrfp_vs_bare"] = round(row["lrfp_images_per_s"] / row["bare_images_per_s"], 3)
            # the spread of the rounds (fastest / slowest), to tell a real gap from a noisy machine
            row.update(bare_round_spread=round(min(tb) / max(tb), 3), lrfp_round_spread=round(min(to) / max(to), 3),
                       lrfp_fp32_retries=ours.fp32_retries)
            add(row)
            if args.first_conv_nchw and cfg.channels_last:
                row = first_conv_layouts(cfg, args.batches, args.rounds)
                add(row)
        if args.stacked and prec == precisions[-1]:
            row = stacked_vs_separate(cfg, args.batches, args.rounds, args.stacked)
            add(row)


def main(argv: list[str] | None = None) -> dict:
    from benchmark.harness import device_name

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="model or model-norm (e.g. model1-bn); repeatable; default model3")
    ap.add_argument("--size", type=int, help="input side (default: the model's size under --sizes)")
    ap.add_argument("--sizes", choices=("quick", "thesis"), default="quick", help="the models' quick or thesis input sizes")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8, help="batches a timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
    ap.add_argument("--stacked", type=int, default=0,
                    help="also time K seeds as K separate epochs against one stacked epoch (benchmark/stacked.py)")
    ap.add_argument("--compile", default="", help="torch.compile mode for both loops (default, reduce-overhead); off if empty")
    ap.add_argument("--first-conv-nchw", action="store_true",
                    help="also time the bare step with the first convolution in NCHW and the rest channels-last")
    ap.add_argument("--cuda-graph", action="store_true", help="replay every step (lrfp's, bare, stacked) as a CUDA graph")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    device = torch_device(args.device, args.threads)
    result = {"machine": device_name(device), "torch": torch.__version__, "platform": platform.platform(),
              "threads": torch.get_num_threads(), "batch_size": args.batch_size, "batches": args.batches,
              "rounds": args.rounds, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "code": code_version(),
              "models": []}
    def add(row: dict) -> None:  # into the JSON result, and on stderr as it comes (a long run shows its progress)
        result["models"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    try:  # stopped early (Ctrl-C, or gpu_check.sh's time limit: SIGINT), it still writes the rows it has
        _measure(args, device, add)
    except KeyboardInterrupt:
        result["interrupted"] = True
        print("interrupted: writing the rows measured so far", file=sys.stderr, flush=True)
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
