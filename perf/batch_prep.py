"""Milliseconds per batch of each part of lrfp's batch preparation on a CPU (a script, not a test).

What `benchmark.engine.train_one_epoch` does to each batch before the model sees it, part by part, beside the
earlier way of doing it: the gather (`x[idx]` then, `index_select` now), the augmentation (rotation + flip:
the `F.affine_grid` grid then, the written-out grid now; bilinear then, nearest now; `grid_sample` alone), and
the whole `prepare_batch` with its channels-last copy; and writing channels-last in the normalization (slower).
Synthetic uint8 images; each figure is the fastest of `--rounds` rounds of `--repeat` calls.

    taskset -c 0 python -m perf.batch_prep --threads 1 --batch 64 --size 64
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


def affine_grid_augment(x: torch.Tensor, generator: torch.Generator, degrees: float) -> torch.Tensor:
    """The augmentation as it was before issue 12's second round: the same draws, `F.affine_grid`'s grid."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator, device=x.device) * 2 - 1) * math.radians(degrees)
    flip = torch.where(torch.rand(n, generator=generator, device=x.device) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def fastest_ms(fn, repeat: int, rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return round(1000 * best, 3)


def main(argv: list[str] | None = None) -> dict:
    from benchmark.data import _normalize_constants, augment, prepare_batch
    from lrfp.machine import cpu_name
    from perf import code_version

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pool", type=int, default=3000, help="images the batch is gathered from")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.pool, 3, args.size, args.size), dtype=torch.uint8, generator=g)
    idx = torch.randperm(args.pool, generator=g)[: args.batch]
    xb = x.index_select(0, idx)
    xf = xb.float()
    grid = F.affine_grid(torch.tensor([[[math.cos(0.2), -math.sin(0.2), 0], [math.sin(0.2), math.cos(0.2), 0]]]).expand(
        args.batch, 2, 3), list(xf.shape), align_corners=False)
    scale, shift = _normalize_constants(xf.device)
    t = lambda fn: fastest_ms(fn, args.repeat, args.rounds)  # noqa: E731
    row = {
        "machine": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "code": code_version(), "batch": args.batch, "size": args.size,
        "gather_x_idx_ms": t(lambda: x[idx]), "gather_index_select_ms": t(lambda: x.index_select(0, idx)),
        "augment_affine_grid_bilinear_ms": t(lambda: affine_grid_augment(xf, g, 15.0)),
        "augment_bilinear_ms": t(lambda: augment(xf, g, 15.0, "bilinear")),
        "augment_nearest_ms": t(lambda: augment(xf, g, 15.0, "nearest")),
        "grid_sample_alone_bilinear_ms": t(lambda: F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros",
                                                                 align_corners=False)),
        "grid_sample_alone_nearest_ms": t(lambda: F.grid_sample(xf, grid, mode="nearest", padding_mode="zeros",
                                                                align_corners=False)),
        "channels_last_copy_ms": t(lambda: xf.contiguous(memory_format=torch.channels_last)),
        # the whole preparation as train_one_epoch runs it (then a channels-last copy), before and now
        "prepare_batch_bilinear_ms": t(lambda: prepare_batch(
            x.index_select(0, idx), train=True, generator=g, degrees=15.0, interpolation="bilinear"
        ).contiguous(memory_format=torch.channels_last)),
        "prepare_batch_nearest_ms": t(lambda: prepare_batch(
            x.index_select(0, idx), train=True, generator=g, degrees=15.0).contiguous(memory_format=torch.channels_last)),
        # the channels-last layout written by the normalization instead of copied after it (tried, not kept)
        "normalize_then_copy_ms": t(lambda: xf.clone().mul_(scale).add_(shift).contiguous(memory_format=torch.channels_last)),
        "normalize_into_channels_last_ms": t(lambda: torch.mul(xf, scale, out=torch.empty_like(
            xf, memory_format=torch.channels_last)).add_(shift)),
    }
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
