"""The model registry: `@register_model`, `list_models()`, `create_model(name, ...)` (timm/torchvision style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lrfp.errors import BenchUsageError

NORMS = ("bn", "bcn", "bcn_ws")
"""Normalizations of Models 1 and 2: BatchNorm, Batch-Channel Norm, Batch-Channel Norm + weight standardization."""


@dataclass(frozen=True)
class ModelSpec:
    """What the harness needs to know about a registered model besides how to build it."""

    name: str
    builder: Callable[..., Any]
    input_size: int  # the thesis's input side (px)
    quick_input_size: int  # the CPU-friendly side used by `--protocol quick`
    min_input_size: int  # the smallest side the architecture takes
    optimizer: str  # "sgd" or "adam", as the thesis trained it
    norms: tuple[str, ...] = ()  # empty: the model has no norm choice
    pretrained: bool = False  # ImageNet weights through torchvision's weights API
    cpu_channels_last: bool = False  # faster in fp32 on a CPU (measured: Model 3 1.4x; ResNet18 slower)
    summary: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str | None = None, *, input_size: int, quick_input_size: int, min_input_size: int,
    optimizer: str = "sgd", norms: tuple[str, ...] = (), pretrained: bool = False, cpu_channels_last: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a builder `fn(*, norm, pretrained, input_size, num_classes) -> nn.Module`."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key].builder is not fn:
            raise ValueError(f"model {key!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = ModelSpec(
            name=key, builder=fn, input_size=input_size, quick_input_size=quick_input_size,
            min_input_size=min_input_size, optimizer=optimizer, norms=tuple(norms), pretrained=pretrained,
            cpu_channels_last=cpu_channels_last, summary=doc[0] if doc else "",
        )
        return fn

    return deco


def _load() -> None:
    # The builders live in benchmark.baselines (which imports torch); load them on first use.
    import benchmark.baselines  # noqa: F401


def list_models() -> list[str]:
    """Registered model names, in the thesis's order."""
    _load()
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BenchUsageError(f"unknown model {name!r}; {_config_hint(name)}known models: {', '.join(_REGISTRY)}") from None


def _config_hint(name: str) -> str:
    """Where `name` is a configuration's name as the results tables show it ("model1-bn": model and norm), the
    model to give instead; bench trains every norm of a model (there is no option to pick one)."""
    model, _, norm = name.rpartition("-")
    spec = _REGISTRY.get(model)
    if spec is None or norm not in spec.norms:
        return ""
    return (f"{name} is a configuration (model {model} with norm {norm}), not a model: give --model {model}, which "
            f"`lrfp bench` trains with each of its norms ({', '.join(spec.norms)}; one norm cannot be picked alone); ")


def check_input_size(spec: ModelSpec, input_size: int) -> None:
    if input_size < spec.min_input_size:
        raise BenchUsageError(
            f"{spec.name} cannot take {input_size} px inputs: it needs at least {spec.min_input_size} px "
            f"(its pooling stages shrink the image to nothing); use --input-size {spec.min_input_size} or more"
        )


def create_model(
    name: str, *, norm: str | None = None, pretrained: bool = False, input_size: int | None = None,
    num_classes: int = 2,
) -> Any:
    """Build a registered model with `num_classes` outputs. `norm` is required for models that take one."""
    spec = get_spec(name)
    if spec.norms:
        norm = norm or spec.norms[0]
        if norm not in spec.norms:
            raise BenchUsageError(f"{name} takes norm {', '.join(spec.norms)}, not {norm!r}")
    elif norm not in (None, "none"):
        raise BenchUsageError(f"{name} has no normalization choice (got norm={norm!r})")
    if pretrained and not spec.pretrained:
        raise BenchUsageError(f"{name} is trained from scratch in the thesis: it has no pretrained weights")
    size = input_size or spec.input_size
    check_input_size(spec, size)
    return spec.builder(norm=norm, pretrained=pretrained, input_size=size, num_classes=num_classes)
