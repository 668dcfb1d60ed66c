"""The six baselines: the thesis's Models 1-3 (our reconstruction of their widths) and three torchvision nets.

The thesis (Tables 1-3) gives layer types and kernel sizes only. Our reconstruction, used everywhere:

- every conv is followed by ReLU; "same" padding for the 5x5/3x3 convs of Models 1-2, none for the 2x2
  convs of Model 3; where the table puts a Norm, the order is conv -> norm -> ReLU -> max-pool
  (computed as conv -> norm -> max-pool -> ReLU: ReLU is monotonic, so max-pool and ReLU commute, in the
  values and in the gradients, and ReLU then touches a quarter of the elements; see `_stage`);
- Model 1: conv5x5 16, conv3x3 32 (+norm), conv3x3 64; FC 128; FC 2;
- Model 2: conv5x5 16, conv3x3 32 (+norm), conv3x3 64, conv3x3 128 (+norm), conv3x3 128; FC 128; FC 2;
- Model 3: conv3x3 32, conv2x2 64, conv2x2 64; FC 256; FC 128; FC 2 (no norm);
- norm `bn` = BatchNorm2d; `bcn` = Batch-Channel Normalization (BatchNorm2d then GroupNorm with 8 groups,
  Qiao et al. 2019); `bcn_ws` = the same with every conv weight-standardized (WSConv2d);
- the FC input is whatever the conv stack leaves at the chosen input size (flatten, as the tables say).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.registry import NORMS, register_model
from lrfp.errors import BenchError

BCN_GROUPS = 8
WS_EPS = 1e-5


class WSConv2d(nn.Conv2d):
    """Conv2d whose weight is standardized per output channel (zero mean, unit std) at every forward."""

    def standardized_weight(self) -> torch.Tensor:
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        std = w.std(dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (w - mean) / (std + WS_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.standardized_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


class BatchChannelNorm2d(nn.Module):
    """Batch-Channel Normalization (Qiao et al. 2019): BatchNorm over the batch, then GroupNorm over channels."""

    def __init__(self, channels: int, groups: int = BCN_GROUPS) -> None:
        super().__init__()
        while channels % groups:
            groups -= 1
        self.batch = nn.BatchNorm2d(channels)
        self.channel = nn.GroupNorm(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel(self.batch(x))


def _conv(norm: str | None, cin: int, cout: int, k: int, padding: int) -> nn.Conv2d:
    cls = WSConv2d if norm == "bcn_ws" else nn.Conv2d
    return cls(cin, cout, k, padding=padding)


def _norm(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "bn" else BatchChannelNorm2d(channels)


def _stage(norm: str | None, cin: int, cout: int, k: int, padding: int, with_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [_conv(norm, cin, cout, k, padding)]
    if with_norm:
        layers.append(_norm(norm or "bn", cout))
    # ReLU(max-pool(x)) == max-pool(ReLU(x)) elementwise, and the gradients agree too: where a window's max is
    # positive both pass it to the same element, otherwise both pass zero. Pooling first runs ReLU and its
    # backward on a quarter of the elements: Model 3 trains 1.5x faster on a CPU (measured, perf/train_speed).
    layers += [nn.MaxPool2d(2), nn.ReLU(inplace=True)]
    return layers


class ThesisCNN(nn.Module):
    """A conv stack, flatten, and a stack of FC layers; the FC input is sized for `input_size`."""

    def __init__(self, features: nn.Sequential, hidden: tuple[int, ...], input_size: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        with torch.no_grad():
            was = features.training
            features.eval()
            flat = features(torch.zeros(1, 3, input_size, input_size)).numel()
            features.train(was)
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(flat, h), nn.ReLU(inplace=True)]
            flat = h
        layers.append(nn.Linear(flat, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("model1", input_size=224, quick_input_size=64, min_input_size=8, optimizer="sgd", norms=NORMS, cpu_channels_last=True)
def model1(*, norm: str, pretrained: bool = False, input_size: int = 224, num_classes: int = 2) -> nn.Module:
    """Thesis Model 1: conv5x5, conv3x3+norm, conv3x3 (16/32/64), FC 128, FC 2; input 224."""
    features = nn.Sequential(
        *_stage(norm, 3, 16, 5, 2, False), *_stage(norm, 16, 32, 3, 1, True), *_stage(norm, 32, 64, 3, 1, False)
    )
    return ThesisCNN(features, (128,), input_size, num_classes)


@register_model("model2", input_size=224, quick_input_size=64, min_input_size=32, optimizer="sgd", norms=NORMS, cpu_channels_last=True)
def model2(*, norm: str, pretrained: bool = False, input_size: int = 224, num_classes: int = 2) -> nn.Module:
    """Thesis Model 2: conv5x5, conv3x3+norm, conv3x3, conv3x3+norm, conv3x3 (16/32/64/128/128), FC 128, FC 2."""
    features = nn.Sequential(
        *_stage(norm, 3, 16, 5, 2, False), *_stage(norm, 16, 32, 3, 1, True), *_stage(norm, 32, 64, 3, 1, False),
        *_stage(norm, 64, 128, 3, 1, True), *_stage(norm, 128, 128, 3, 1, False),
    )
    return ThesisCNN(features, (128,), input_size, num_classes)


@register_model("model3", input_size=64, quick_input_size=64, min_input_size=14, optimizer="adam", cpu_channels_last=True)
def model3(*, norm: str | None = None, pretrained: bool = False, input_size: int = 64, num_classes: int = 2) -> nn.Module:
    """Thesis Model 3: conv3x3, conv2x2, conv2x2 (32/64/64), FC 256, FC 128, FC 2; input 64; Adam."""
    features = nn.Sequential(
        *_stage(None, 3, 32, 3, 1, False), *_stage(None, 32, 64, 2, 0, False), *_stage(None, 64, 64, 2, 0, False)
    )
    return ThesisCNN(features, (256, 128), input_size, num_classes)


# -- torchvision transfer models -----------------------------------------------------------------


def weights_file(name: str) -> Path:
    """Where torchvision looks for `name`'s ImageNet weights: $TORCH_HOME/hub/checkpoints/<file of the URL>."""
    from torchvision.models import get_model_weights

    url = get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def load_pretrained(name: str) -> nn.Module:
    """torchvision's `get_model(name, weights=DEFAULT)`: the cached file if present, else a download.

    torchvision passes check_hash=True, but torch.hub checks the hash only when it downloads: a file
    already in the cache is loaded as is (that is how tests plant one).
    """
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    path = weights_file(name)
    try:
        return get_model(name, weights=weights)
    except OSError as e:  # URLError, socket errors, unreadable cache
        if path.exists():
            raise BenchError(f"cannot read {name}'s ImageNet weights at {path}: {e}") from e
        reason = getattr(e, "reason", None) or e
        raise BenchError(
            f"{name} needs its ImageNet weights and they are not cached and cannot be downloaded ({reason}). "
            f"Put {weights.url} at {path} ($TORCH_HOME/hub/checkpoints/{path.name}), "
            "or run with --no-pretrained (recorded in the results)"
        ) from e
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise BenchError(
            f"{path} is not a usable {name} checkpoint ({type(e).__name__}: {str(e)[:200]}); delete it and retry, "
            "or run with --no-pretrained"
        ) from e


def _torchvision(name: str, pretrained: bool, num_classes: int) -> nn.Module:
    from torchvision.models import get_model

    model = load_pretrained(name) if pretrained else get_model(name, weights=None)
    if name == "resnet18":
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:  # vgg16, alexnet: the last layer of the classifier
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)
    return model


@register_model("vgg16", input_size=224, quick_input_size=32, min_input_size=32, optimizer="sgd", pretrained=True)
def vgg16(*, norm: str | None = None, pretrained: bool = True, input_size: int = 224, num_classes: int = 2) -> nn.Module:
    """torchvision VGG-16, ImageNet weights, last layer -> 2 outputs, all layers fine-tuned."""
    return _torchvision("vgg16", pretrained, num_classes)


@register_model("resnet18", input_size=224, quick_input_size=64, min_input_size=1, optimizer="sgd", pretrained=True)
def resnet18(*, norm: str | None = None, pretrained: bool = True, input_size: int = 224, num_classes: int = 2) -> nn.Module:
    """torchvision ResNet18, ImageNet weights, fc -> 2 outputs, all layers fine-tuned."""
    return _torchvision("resnet18", pretrained, num_classes)


@register_model("alexnet", input_size=224, quick_input_size=64, min_input_size=63, optimizer="sgd", pretrained=True)
def alexnet(*, norm: str | None = None, pretrained: bool = True, input_size: int = 224, num_classes: int = 2) -> nn.Module:
    """torchvision AlexNet, ImageNet weights, last layer -> 2 outputs, all layers fine-tuned."""
    return _torchvision("alexnet", pretrained, num_classes)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-adds of one forward pass on one image (convolutions and linear layers)."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return total
