"""One training step replayed as a CUDA graph (`lrfp bench --cuda-graph`), for models too small to keep a GPU busy.

Issue 12's H200 profile of Model 3: 192 ms of wall time an epoch for 20 ms of GPU kernels, about 3,200
kernel launches an epoch; the step is bound by Python and launches, not by the GPU. A CUDA graph records the
step's kernels once (forward, loss, backward, optimizer step and the loss/accuracy sums) and replays them
with one launch. The recipe is PyTorch's "whole network capture" (docs: CUDA semantics > CUDA Graphs):

- a few warm-up steps on a side stream first (cuDNN autotuning, lazy optimizer state), each a real
  training step on its real batch, so the protocol is unchanged;
- gradients set to None before the capture, so backward allocates them from the graph's memory pool;
- autocast with its weight cache off (`cache_enabled=False`) and Adam with `capturable=True`
  (`engine.make_optimizer`), both required for capture;
- batches of the captured size are copied into the graph's static input tensors and replayed; a batch of
  another size (the epoch's remainder) runs eagerly on the same parameters, with gradients zeroed in place,
  so that `p.grad` stays the tensor the graph writes (set to None, each eager step would allocate new
  ones and the graph's own would go back to its pool while the graph still writes into them);
- Python's garbage collector runs before each capture and is off during it: torch >= 2.9 no longer
  collects there, and a graph left over from an earlier run (a reference cycle, freed by the collector
  at any moment) must not be destroyed while another is being captured ("operation not permitted when
  stream is capturing", pytorch/pytorch#161037).

What stays outside the graph: the gather of the batch and its augmentation (they draw from lrfp's own
`torch.Generator`, which the graph would freeze). Dropout inside the graph uses the default CUDA
generator, which CUDA graphs support (its offsets advance with each replay).

Not yet measured on a GPU: opt-in until `perf/gpu_check.sh` says it pays. CUDA only; `graph_factory` is a
seam for the CPU tests, which check everything but the capture itself (tests/test_bench_cudagraph.py).
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from typing import Any, Callable, Iterator

import torch

StepFn = Callable[[torch.Tensor, torch.Tensor, bool], None]
"""step(xb, yb, set_to_none): zero the gradients (set to None, or in place), forward, loss, backward,
optimizer step, and add the batch's loss and correct count to sums the caller owns (device tensors)."""

WARMUP_STEPS = 3  # PyTorch's whole-network-capture example warms up 3 iterations (cuDNN autotuning, lazy state)


class GraphedStep:
    """Runs `step` eagerly for the first `warmup` batches of the first batch size seen, then captures it once
    and replays the capture for every later batch of that size; other sizes run eagerly.

    step: see `StepFn`. It must only read its inputs and update tensors that live as long as this object
    (parameters, optimizer state, the caller's sums), as CUDA graph capture requires.
    graph_factory: `torch.cuda.CUDAGraph` (default); tests pass a stand-in on a CPU.
    Counters: `warmup_steps`, `replays` (the captured call included), `eager_steps` (other batch sizes).
    """

    def __init__(self, step: StepFn, *, warmup: int = WARMUP_STEPS, graph_factory: Callable[[], Any] | None = None) -> None:
        self.step = step
        self.warmup = warmup
        self._factory = graph_factory
        self._key: tuple | None = None
        self._static_x: torch.Tensor | None = None
        self._static_y: torch.Tensor | None = None
        self.graph: Any = None
        self.warmup_steps = self.replays = self.eager_steps = 0

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        key = (tuple(xb.shape), xb.dtype, xb.stride(), tuple(yb.shape), yb.dtype, xb.device)
        if self._key is None:
            self._key = key
        if key != self._key:  # the remainder batch: eagerly, keeping the gradient tensors the graph writes
            with _eager_capturable():
                self.step(xb, yb, self.graph is None)
            self.eager_steps += 1
            return
        if self.warmup_steps < self.warmup:
            self._warm(xb, yb)
            return
        if self.graph is None:
            self._capture(xb, yb)
        else:
            self._static_x.copy_(xb)
            self._static_y.copy_(yb)
        self.graph.replay()
        self.replays += 1

    def _warm(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        with _eager_capturable():
            self._warm_step(xb, yb)
        self.warmup_steps += 1

    def _warm_step(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if xb.is_cuda:  # on a side stream, as the PyTorch recipe does, so that capture starts from a clean stream
            side = torch.cuda.Stream(device=xb.device)
            side.wait_stream(torch.cuda.current_stream(xb.device))
            with torch.cuda.stream(side):
                self.step(xb, yb, True)
            torch.cuda.current_stream(xb.device).wait_stream(side)
        else:
            self.step(xb, yb, True)

    def _capture(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Record the step on static copies of this batch (capture runs nothing; the caller replays it)."""
        self._static_x = xb.clone(memory_format=torch.preserve_format)
        self._static_y = yb.clone()
        factory = self._factory or torch.cuda.CUDAGraph
        graph = factory()
        if isinstance(graph, torch.cuda.CUDAGraph):
            gc.collect()  # free earlier runs' graphs now, not in the middle of this capture (module docstring)
            enabled = gc.isenabled()
            gc.disable()
            try:
                with torch.cuda.graph(graph):
                    self.step(self._static_x, self._static_y, True)
            finally:
                if enabled:
                    gc.enable()
        else:  # a stand-in (tests): it records the call to run it at each replay
            graph.capture(lambda: self.step(self._static_x, self._static_y, True))
        self.graph = graph


@contextlib.contextmanager
def _eager_capturable() -> Iterator[None]:
    """Silence torch's warning that an optimizer built with capturable=True steps outside a capture: the warm-up
    and remainder steps do so by design (torch/optim/optimizer.py, `_accelerator_graph_capture_health_check`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This instance was constructed with capturable=True")
        yield
