"""Batched inference: RGB face crops in, class probabilities out, with the checkpoint's own preprocessing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from lrfp.errors import UsageError
from lrfp.predict.checkpoint import Checkpoint

CPU_BATCH = 8
"""Default crops per forward pass on a CPU. Measured by perf/predict_speed (one core): Model 3 at 64 px costs less
per face in batches of 4-8 than of 64-256 (a batch's activations stay in the CPU's cache: 32 x 64 x 64 floats
per face after the first layer), and ResNet18 at 224 px is fastest per face near 4 too."""
CUDA_BATCH = 256
"""Default on a GPU, where a large batch keeps the device busy."""


def default_batch(device: str) -> int:
    return CUDA_BATCH if device.startswith("cuda") else CPU_BATCH


def resolve_device(device: str) -> str:
    """auto -> cuda where a CUDA device is present, else cpu (the rule of `lrfp bench --device`,
    benchmark.harness.resolve_device). Raises UsageError (exit 2) for an unknown name, LrfpError (exit 1, as
    `lrfp bench` and `lrfp review-labels`) for cuda where this machine has none: the option is right, the machine
    cannot do it."""
    from benchmark.harness import resolve_device as bench_resolve
    from lrfp.errors import BenchError, BenchUsageError, LrfpError

    try:
        return bench_resolve(device)
    except BenchUsageError as e:
        raise UsageError(str(e)) from e
    except BenchError as e:
        raise LrfpError(str(e)) from e


@dataclass
class Classifier:
    """A checkpoint's model on a device. `predict_proba(images)` classifies any number of crops in batches.

    Preprocessing is the bench's own code (benchmark.data: Subset.tensor resizes, prepare_batch normalizes),
    so a crop is seen exactly as in training and evaluation. Inference runs in fp32.
    """

    ckpt: Checkpoint
    device: str = "cpu"
    batch_size: int | None = None  # None: default_batch(device)
    seconds: float = field(default=0.0, init=False)  # time spent in predict_proba, preprocessing included
    preprocess_seconds: float = field(default=0.0, init=False)  # of which decoding/resizing/normalizing
    images: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        import torch

        if self.batch_size is None:
            self.batch_size = default_batch(self.device)
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1 (got {self.batch_size})")
        # Channels-last on a CPU: oneDNN's convolutions and pooling run 1.2-3x faster per face in that layout
        # (perf/predict_speed; the bench trains Models 1-3 that way on a CPU for the same reason).
        self._memory_format = torch.contiguous_format if self.device.startswith("cuda") else torch.channels_last
        self.model = self.ckpt.model.to(self.device, memory_format=self._memory_format)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.ckpt.classes

    def predict_proba(self, images: Sequence[Any]) -> Any:
        """Class probabilities for RGB uint8 crops (each H x W x 3, any size).

        Returns a float32 numpy array N x len(classes), rows summing to 1 (softmax of the logits).
        """
        import numpy as np
        import torch

        from benchmark.data import Subset, prepare_batch

        t0 = time.perf_counter()
        out = np.zeros((len(images), len(self.classes)), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                chunk = list(images[i : i + self.batch_size])
                t1 = time.perf_counter()
                sub = Subset(chunk, np.zeros(len(chunk), dtype=np.int64), np.zeros(len(chunk)), [])
                x = prepare_batch(sub.tensor(self.ckpt.input_size).to(self.device), train=False)
                x = _normalize_as(x, self.ckpt).contiguous(memory_format=self._memory_format)
                self.preprocess_seconds += time.perf_counter() - t1
                out[i : i + len(chunk)] = self.model(x).float().softmax(1).cpu().numpy()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t0
        self.images += len(images)
        return out


def _normalize_as(x: Any, ckpt: Checkpoint) -> Any:
    """prepare_batch normalizes with ImageNet's mean/std; a checkpoint recording other values gets its own."""
    import torch

    from benchmark.data import IMAGENET_MEAN, IMAGENET_STD

    if tuple(ckpt.mean) == tuple(IMAGENET_MEAN) and tuple(ckpt.std) == tuple(IMAGENET_STD):
        return x
    im_mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    im_std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    mean = torch.tensor(ckpt.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(ckpt.std, device=x.device).view(1, 3, 1, 1)
    return (x * im_std + im_mean - mean) / std
