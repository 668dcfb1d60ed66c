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
    got = augment(x, torch.Generator().manual_seed(5), 15.0)
    g = torch.Generator().manual_seed(5)  # the same draws, in the same order: angles, then flips
    angle = (torch.rand(len(x), generator=g) * 2 - 1) * math.radians(15.0)
    flip = torch.where(torch.rand(len(x), generator=g) < 0.5, -1.0, 1.0)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(len(x))
    theta = torch.stack([torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    want = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-3)


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
