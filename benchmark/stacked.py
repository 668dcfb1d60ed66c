"""Several seeds of one config trained as one stacked model (torch.func), for GPUs that one small model leaves idle.

Issue 12: on an H200 three runs in three processes time-slice the GPU (`--jobs 3` gave almost nothing);
one process running the seeds' steps as one batched computation fills it with K times the work per kernel
launch. Each seed keeps its own initialization (`torch.manual_seed(seed)` before building, as `engine.run`),
its own data order and its own augmentation (its own generator, drawn in the same order as `train_one_epoch`),
and its own optimizer state: SGD with momentum and Adam update each element from its own gradient and state
only, so one optimizer over the stacked parameters is K independent optimizers. The result equals K separate
`train_one_epoch` runs up to float rounding (tests/test_bench_stacked.py checks it on the CPU).

Exact only where a seed's step is deterministic given its data: models with Dropout (VGG-16, AlexNet) draw
their masks from the global generator, which vmap cannot split the way separate runs do, so `stackable`
refuses them. BatchNorm works: its running statistics are stacked buffers updated in place per seed.
Not measured on a GPU yet, so opt-in: `lrfp bench --stack-seeds` (`engine.run_stacked`); perf/loop_overhead.py
--stacked K and perf/gpu_check.sh measure it.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.data import ROTATION_INTERPOLATION, prepare_batch


def stackable(model: nn.Module) -> bool:
    """Whether stacking `model`'s seeds gives the same numbers as separate runs (no Dropout: see above)."""
    return not any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())


class StackedSeeds:
    """K models of one architecture (one per seed) trained together; `model(k)` gives seed k's as an nn.Module.

    models: K modules of the same architecture on one device, in train mode, already initialized per seed.
    optimizer: "sgd" (with `momentum`) or "adam", at `lr` (the same for every seed, as in the grid).
    cuda_graph: replay each stacked step as a CUDA graph (`benchmark.cudagraph`; CUDA only, `graph_factory` is
    the tests' stand-in for `torch.cuda.CUDAGraph`).
    """

    def __init__(self, models: list[nn.Module], optimizer: str, lr: float, momentum: float = 0.9, *,
                 cuda_graph: bool = False, graph_factory: Callable[[], Any] | None = None) -> None:
        from torch.func import stack_module_state

        if not models or not all(stackable(m) for m in models):
            raise ValueError("stacked seeds need models without Dropout (their masks would differ from separate runs)")
        self.k = len(models)
        params, buffers = stack_module_state(models)
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.buffers = {n: b.clone() for n, b in buffers.items()}
        self._template = copy.deepcopy(models[0])  # holds the architecture; its own tensors are never used
        plist = list(self.params.values())
        capturable = cuda_graph and plist[0].is_cuda  # Adam's step count on the device, as graph capture needs
        self.optimizer = (torch.optim.Adam(plist, lr=lr, foreach=True, capturable=capturable) if optimizer == "adam"
                          else torch.optim.SGD(plist, lr=lr, momentum=momentum, foreach=True))
        device = plist[0].device
        self._loss_sum = torch.zeros(self.k, device=device)
        self._correct = torch.zeros(self.k, device=device, dtype=torch.long)
        self._amp = False
        self._cuda_graph = cuda_graph
        if cuda_graph:
            from benchmark.cudagraph import GraphedStep

            self.graphed = GraphedStep(self._step, graph_factory=graph_factory)

    def _forward(self, xb: torch.Tensor) -> torch.Tensor:
        """xb: K,B,3,H,W float -> logits K,B,classes, seed k's inputs through seed k's weights."""
        from torch.func import functional_call, vmap

        def one(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(self._template, (params, buffers), (x,))

        return vmap(one, in_dims=(0, 0, 0))(self.params, self.buffers, xb)

    def train_one_epoch(
        self, x: torch.Tensor, y: torch.Tensor, generators: list[torch.Generator], batch_size: int, degrees: float,
        amp: bool = False, interpolation: str = ROTATION_INTERPOLATION,
    ) -> list[dict[str, float]]:
        """One epoch of every seed over (x uint8 N,3,H,W, y N) on the device; seed k shuffles and augments with
        generators[k] exactly as `engine.train_one_epoch` would. Returns per seed: loss, accuracy, images, seconds
        (the shared wall time of the stacked epoch)."""
        self._template.train()
        n = x.shape[0]
        device = x.device
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perms = [torch.randperm(n, generator=g, device=device) for g in generators]
        self._loss_sum.zero_()
        self._correct.zero_()
        self._amp = amp
        seen = 0
        for i in range(0, n, batch_size):
            idx = [p[i : i + batch_size] for p in perms]
            if len(idx[0]) < 2:  # as train_one_epoch: BatchNorm cannot train on a batch of one
                continue
            xb = torch.stack([prepare_batch(x.index_select(0, ix), train=True, generator=g, degrees=degrees,
                                            interpolation=interpolation)
                              for ix, g in zip(idx, generators)])
            yb = torch.stack([y.index_select(0, ix) for ix in idx])
            if self._cuda_graph:
                self.graphed(xb, yb)
            else:
                self._step(xb, yb, True)
            seen += len(idx[0])
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        if not seen:
            raise ValueError("no training batch of two or more images")
        losses_out, correct_out = (self._loss_sum / seen).tolist(), self._correct.tolist()
        return [{"loss": losses_out[k], "accuracy": correct_out[k] / seen, "images": seen, "seconds": seconds}
                for k in range(self.k)]

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, set_to_none: bool) -> None:
        """xb K,B,3,H,W and yb K,B: every seed's step at once; adds to the per-seed loss and correct sums."""
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=self._amp, cache_enabled=not self._cuda_graph):
            logits = self._forward(xb)
        # per-seed mean cross-entropy, summed: each seed's gradient is its own loss's gradient
        losses = F.cross_entropy(logits.float().flatten(0, 1), yb.flatten(), reduction="none").view(self.k, -1).mean(1)
        self.optimizer.zero_grad(set_to_none=set_to_none)
        losses.sum().backward()
        self.optimizer.step()
        self._loss_sum += losses.detach() * yb.shape[1]
        self._correct += (logits.detach().argmax(-1) == yb).sum(1)

    def model(self, k: int) -> nn.Module:
        """Seed k's weights and buffers as a standalone module (a copy, for evaluation or a checkpoint)."""
        m = copy.deepcopy(self._template)
        state = {n: p[k].detach().clone() for n, p in self.params.items()}
        state.update({n: b[k].clone() for n, b in self.buffers.items()})
        m.load_state_dict(state)
        return m
