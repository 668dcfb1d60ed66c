"""The training augmentation (benchmark/data.py `augment`): rotation within +-degrees and a horizontal flip."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.data import augment


def _images(n: int = 16, h: int = 24, w: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(3)).float()


def test_the_grid_is_affine_grids():
    """The hand-written sampling grid gives what torch's affine_grid gives for the same random draws."""
    x = _images()
    got = augment(x, torch.Generator().manual_seed(5), 15.0, "bilinear")  # continuous in the grid: compares grids
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order: angles, then flips
    angle = (torch.rand(len(x), generator=g) * 2 - 1) * math.radians(15.0)
    flip = torch.where(torch.rand(len(x), generator=g) < 0.5, -1.0, 1.0)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(len(x))
    theta = torch.stack([torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    want = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-3)


def _draws(n: int, seed: int, degrees: float) -> tuple[list[float], list[bool]]:
    """The angles (degrees) and flips `augment` draws from a generator seeded `seed`, in its order."""
    g = torch.Generator().manual_seed(seed)
    angle = (torch.rand(n, generator=g) * 2 - 1) * degrees
    flip = torch.rand(n, generator=g) < 0.5
    return angle.tolist(), flip.tolist()


def test_default_is_torchvisions_random_rotation_and_flip():
    """By default each image is what torchvision's RandomRotation (nearest, black corners) then
    RandomHorizontalFlip make of it for the same angle and flip: the thesis's torchvision pipeline."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = _images(n=24, h=40, w=40)
    got = augment(x, torch.Generator().manual_seed(7), 15.0)
    angles, flips = _draws(len(x), 7, 15.0)
    assert min(angles) < -5 and max(angles) > 5 and any(flips) and not all(flips)
    for img, out, angle, flip in zip(x, got, angles, flips):
        want = TF.rotate(img, angle, interpolation=InterpolationMode.NEAREST, fill=0.0)
        if flip:
            want = TF.hflip(want)
        same = (out == want).float().mean().item()
        assert same == 1.0, f"angle {angle:.2f}, flip {flip}: only {same:.4f} of the pixels equal torchvision's"


def test_nearest_takes_each_pixel_from_the_image_or_black():
    x = _images()
    out = augment(x, torch.Generator().manual_seed(4), 20.0)
    for img, o in zip(x, out):
        values = set(img.unique().tolist()) | {0.0}
        assert set(o.unique().tolist()) <= values
    assert not torch.equal(augment(x, torch.Generator().manual_seed(4), 20.0, "bilinear"), out)


def test_without_rotation_each_image_is_itself_or_its_mirror():
    x = _images()
    out = augment(x, torch.Generator().manual_seed(1), 0.0)
    kinds = []
    for a, b in zip(out, x):
        if torch.allclose(a, b, atol=1e-3):
            kinds.append("same")
        else:
            torch.testing.assert_close(a, b.flip(-1), rtol=0, atol=1e-3)
            kinds.append("mirror")
    assert set(kinds) == {"same", "mirror"}  # 16 images: both happen


@pytest.mark.parametrize("degrees", [10.0, 30.0])
def test_rotation_stays_within_its_range(degrees):
    """A centred bright bar: its angle after augmentation is within +-degrees of horizontal (mod the flip)."""
    x = torch.zeros(64, 1, 41, 41)
    x[:, :, 19:22, 4:37] = 255.0
    out = augment(x, torch.Generator().manual_seed(2), degrees)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(41.0) - 20, torch.arange(41.0) - 20, indexing="ij")
    angles = []
    for img in out:  # principal axis of the bar's intensity
        wsum = img.sum()
        cxx, cyy, cxy = (img * xs * xs).sum() / wsum, (img * ys * ys).sum() / wsum, (img * xs * ys).sum() / wsum
        angles.append(math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy)))
    assert max(abs(a) for a in angles) <= degrees + 1.0
    assert max(abs(a) for a in angles) >= degrees * 0.6  # and it really rotates


@pytest.mark.parametrize("train", [False, True])
def test_prepare_batch_normalizes_as_imagenet(train):
    """((x / 255) - mean) / std of the batch, augmented (the same draws as `augment`) when training."""
    from benchmark.data import IMAGENET_MEAN, IMAGENET_STD, prepare_batch

    x = torch.randint(0, 256, (6, 3, 20, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(8))
    got = prepare_batch(x, train=train, generator=torch.Generator().manual_seed(1), degrees=15.0)
    seen = augment(x.float(), torch.Generator().manual_seed(1), 15.0) if train else x.float()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert got.dtype == torch.float32 and got.shape == x.shape
    torch.testing.assert_close(got, (seen / 255 - mean) / std, rtol=1e-5, atol=1e-5)
