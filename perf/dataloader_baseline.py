"""The thesis-era way to train, kept as the yardstick for `perf/train_speed.py`: torchvision `ImageFolder` +
`DataLoader` worker processes + PIL transforms per image, fp32, no channels-last, no autocast."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from benchmark.data import IMAGENET_MEAN, IMAGENET_STD
from benchmark.registry import create_model, get_spec


def export_image_folder(subset: Any, dest: Path) -> Path:
    """Write a decoded subset as PNGs in class subfolders (what ImageFolder reads)."""
    from PIL import Image

    from lrfp import LABELS

    for label in LABELS:
        (dest / label).mkdir(parents=True, exist_ok=True)
    for i, (arr, y) in enumerate(zip(subset.images, subset.labels)):
        Image.fromarray(arr).save(dest / LABELS[int(y)] / f"{i:06d}.png")
    return dest


def dataloader_trainer(
    model_name: str, norm: str | None, folder: Path, input_size: int, *, device: str = "cpu",
    workers: int = 8, batch_size: int = 64, lr: float = 0.001, rotation_degrees: float = 15.0, seed: int = 0,
) -> Callable[[], dict[str, float]]:
    """A callable that trains one epoch the plain way and returns its images, seconds and images/s."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([
        transforms.Resize((input_size, input_size)), transforms.RandomRotation(rotation_degrees),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=device.startswith("cuda"),
        persistent_workers=workers > 0, drop_last=False,
    )
    torch.manual_seed(seed)
    model = create_model(model_name, norm=norm, input_size=input_size).to(device)
    spec = get_spec(model_name)
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if spec.optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
    model.train()

    def one_epoch() -> dict[str, float]:
        t0 = time.perf_counter()
        n = 0
        for xb, yb in loader:
            if len(yb) < 2:
                continue
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(yb)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        return {"images": n, "seconds": seconds, "images_per_s": n / seconds}

    return one_epoch
