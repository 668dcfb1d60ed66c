"""Out-of-fold class probabilities: one small model per fold, trained on the other folds, applied to its own.

Uses the benchmark's registry and training loop (`benchmark.engine.train_one_epoch` / `evaluate`), so the
model, augmentation and normalization are exactly those `lrfp bench` trains.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OofConfig:
    """How each fold's model is trained. Defaults: Model 3 (the thesis's best) with Adam lr 0.001 (thesis,
    Experiment 3), at 32 px and 15 epochs so that five folds of SMFD's 1,376 crops train in minutes on a CPU
    (the thesis's 64 px and 30 epochs are allowed: --input-size 64 --epochs 30). Batch 32, half the thesis's
    64: a store with a few hundred labels otherwise gets too few optimizer steps per fold (measured on 168
    SMFD crops, 3 folds, 8 epochs: out-of-fold accuracy 82% at batch 64, 86-93% at batch 16)."""

    model: str = "model3"
    input_size: int = 32
    epochs: int = 15
    batch_size: int = 32
    lr: float = 0.001
    seed: int = 0
    device: str = "cpu"


def out_of_fold_probabilities(
    x_u8: Any, labels: np.ndarray, folds: np.ndarray, cfg: OofConfig,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class probabilities (N, 2) of each crop from the model of the fold that held it out.

    x_u8: uint8 tensor (N, 3, S, S) at cfg.input_size; labels: class index (N,); folds: fold per crop (N,).
    Each fold's model is trained from scratch (seed cfg.seed + fold) for cfg.epochs on every other fold.
    `progress(done_folds, k)` is called after each fold.
    """
    import torch

    from benchmark.cpu_allocator import keep_freed_memory
    from benchmark.engine import RunConfig, evaluate, make_optimizer, train_one_epoch
    from benchmark.registry import create_model, get_spec

    keep_freed_memory()  # as lrfp bench: each training step reuses the memory the last one freed
    spec = get_spec(cfg.model)
    k = int(folds.max()) + 1
    y_all = torch.as_tensor(labels, dtype=torch.long)
    out = np.zeros((len(labels), 2), dtype=np.float32)
    channels_last = spec.cpu_channels_last and cfg.device == "cpu"
    for fold in range(k):
        run = RunConfig(
            model=cfg.model, norm=spec.norms[0] if spec.norms else None, seed=cfg.seed + fold, epochs=cfg.epochs,
            eval_epochs=(cfg.epochs,), input_size=cfg.input_size, optimizer=spec.optimizer, lr=cfg.lr,
            batch_size=cfg.batch_size, device=cfg.device, channels_last=channels_last, protocol="review-labels",
        )
        train = torch.as_tensor(folds != fold)
        held = torch.as_tensor(folds == fold)
        torch.manual_seed(run.seed)
        model = create_model(cfg.model, norm=run.norm, input_size=cfg.input_size).to(
            cfg.device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        optimizer = make_optimizer(model, run)
        generator = torch.Generator(device=cfg.device)
        generator.manual_seed(run.seed)
        xtr, ytr = x_u8[train].to(cfg.device), y_all[train].to(cfg.device)
        for _ in range(cfg.epochs):
            train_one_epoch(model, optimizer, xtr, ytr, run, generator)
        ev = evaluate(model, x_u8[held].to(cfg.device), y_all[held].to(cfg.device), run)
        out[held.numpy()] = ev["prob"]
        log.info("review-labels fold %d/%d: %d held out, accuracy %.3f", fold + 1, k, int(held.sum()), ev["accuracy"])
        if progress:
            progress(fold + 1, k)
    return out
