"""Find, load and validate a checkpoint written by `lrfp bench`: its model, classes, input size and normalization.

A bench results folder keeps one checkpoint per configuration, `<out>/checkpoints/<config>.pt`, with a
`<config>.json` sidecar. The engine (`benchmark.engine.save_best_checkpoint`) keeps there the weights with the
best validation accuracy over every epoch and seed of that configuration, lower validation loss breaking ties:
`--from OUT --config NAME` takes that file, so "best" means best on validation, never on test.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfp.errors import CheckpointError
from lrfp.paths import file_sha256

REQUIRED_KEYS = ("state_dict", "config", "classes", "input_size", "normalization")
"""What every checkpoint `lrfp bench` writes holds besides the weights' provenance (benchmark/engine.py)."""

FIX = "give a .pt from the checkpoints/ folder of `lrfp bench --out`, or --from BENCH_OUT --config NAME"
DAMAGED = ("if `lrfp bench` wrote it, the file is damaged (a crash or a full disk while it was written, or an "
           "interrupted copy) and cannot be used: train it again with `lrfp bench --model MODEL --out DIR`")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint: the model (eval mode, on the CPU) and how its inputs must look.

    Preprocessing (what the model was trained on, `benchmark.data`): RGB, resized (stretched, bilinear) to
    input_size x input_size, scaled to [0, 1], then (x - mean) / std per channel. Outputs: one logit per class,
    in `classes` order.
    """

    path: Path
    sha256: str
    config: str  # e.g. "model3", "model1-bn"
    model_name: str
    norm: str | None
    classes: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model: Any = field(repr=False)  # torch.nn.Module
    meta: dict[str, Any] = field(default_factory=dict, repr=False)  # epoch, val_accuracy, split, ...




def best_checkpoint(results_dir: Path, config: str) -> Path:
    """The checkpoint of `config` in a bench results folder (see the module docstring for which one that is).

    Raises CheckpointError when the folder, its checkpoints/ or that configuration's file is missing.
    """
    results_dir = Path(results_dir)
    ckpts = results_dir / "checkpoints"
    if results_dir.is_file():
        raise CheckpointError(f"--from {results_dir} is a file, not a folder: give the --out folder of an `lrfp bench` "
                              "run (a checkpoint file goes to --checkpoint)")
    if not results_dir.is_dir():
        raise CheckpointError(f"--from {results_dir}: no such folder; give the --out folder of an `lrfp bench` run")
    if not ckpts.is_dir():
        raise CheckpointError(
            f"--from {results_dir}: it has no checkpoints/ folder, so it is not the --out of an `lrfp bench` run "
            "that finished a run; train one with `lrfp bench --model NAME --out DIR`"
        )
    path = ckpts / f"{config}.pt"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ckpts.glob("*.pt"))) or "none"
        raise CheckpointError(f"--from {results_dir}: no checkpoint for config {config!r} (there: {known}); pick one with --config")
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    """Load and check a checkpoint with `torch.load(weights_only=True)` (no code from the file is run).

    Raises CheckpointError, naming the problem and the fix, when the file is missing, is not a PyTorch file
    (text, truncated, corrupt), holds no lrfp bench metadata (e.g. a bare state dict), is of a newer format,
    names a model this lrfp does not know, or its weights do not fit that model.
    """
    import torch

    from benchmark.engine import CHECKPOINT_FORMAT

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}; {FIX}")
    what = _describe_unloadable(path)
    if what is not None:
        damaged = what.startswith("it is a truncated")
        raise CheckpointError(f"{path} is not a checkpoint: {what}; {DAMAGED + ', or ' if damaged else ''}{FIX}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, pickle.UnpicklingError, EOFError, zipfile errors ...
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({type(e).__name__}: {_first_line(e)}); {DAMAGED}, or {FIX}") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint of `lrfp bench`; {FIX}")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path} is a bare state dict (weights only, {len(obj)} tensors) without the config, classes, input size "
            f"and normalization that `lrfp bench` saves with them; {FIX}"
        )
    fmt = obj.get("checkpoint_format", 1)
    if not isinstance(fmt, int) or fmt > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {fmt!r} (lrfp {obj.get('lrfp_version', '?')}), this lrfp reads up to "
            f"{CHECKPOINT_FORMAT}: upgrade lrfp"
        )
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing)}: it was not written by `lrfp bench` of this version "
            f"(format {CHECKPOINT_FORMAT}); retrain it with `lrfp bench`, or {FIX}"
        )
    return _build(path, obj)


def _build(path: Path, obj: dict[str, Any]) -> Checkpoint:
    from benchmark.registry import create_model
    from lrfp.errors import BenchError

    cfg = obj["config"]
    classes = obj["classes"]
    norm = obj["normalization"]
    size = obj["input_size"]
    ok = (
        isinstance(cfg, dict) and isinstance(cfg.get("model"), str)
        and isinstance(classes, (list, tuple)) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)
        and len(set(classes)) == len(classes)
        and isinstance(size, int) and size > 0
        and isinstance(norm, dict) and len(norm.get("mean", ())) == 3 and len(norm.get("std", ())) == 3
    )
    if not ok:
        raise CheckpointError(f"{path} has an lrfp checkpoint's keys but not their shape (config, classes, input_size or "
                              f"normalization is malformed); {FIX}")
    model_name = cfg["model"]
    model_norm = cfg.get("norm")
    try:
        model = create_model(model_name, norm=model_norm, pretrained=False, input_size=size, num_classes=len(classes))
    except BenchError as e:
        raise CheckpointError(f"{path}: {e}; it was written by another lrfp version or is not from `lrfp bench`") from e
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"{path}: its weights do not fit {model_name} ({_first_line(e)}); the state dict is of another model; {FIX}"
        ) from e
    model.eval()
    config_name = f"{model_name}-{model_norm}" if model_norm else model_name
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    return Checkpoint(
        path=path, sha256=file_sha256(path), config=config_name, model_name=model_name, norm=model_norm,
        classes=tuple(classes), input_size=size, mean=tuple(float(x) for x in norm["mean"]),
        std=tuple(float(x) for x in norm["std"]), model=model, meta=json.loads(json.dumps(meta, default=str)),
    )


def check_classes(ckpt: Checkpoint, store_labels: tuple[str, ...]) -> None:
    """The checkpoint must predict exactly the store's classes (any order: predictions are kept by name).

    Raises CheckpointError otherwise.
    """
    if set(ckpt.classes) != set(store_labels):
        raise CheckpointError(
            f"{ckpt.path} predicts {', '.join(ckpt.classes)}, but the store's labels are {', '.join(store_labels)}: "
            "its predictions cannot be compared with the labels; use a checkpoint trained by `lrfp bench` on "
            "crops labeled with these classes"
        )


def _describe_unloadable(path: Path) -> str | None:
    """Why a file cannot be a torch checkpoint, found cheaply before torch.load (None: it may be one)."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK"):  # torch.save's zip format: a truncated copy loses the central directory at the end
        if not zipfile.is_zipfile(path):
            return "it is a truncated or damaged zip (an interrupted copy or download?)"
        return None
    if head[:1] == b"\x80":  # a pickle (torch's legacy format)
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "it is neither a PyTorch zip nor a pickle"
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    return f"it is a text file (starts with {first!r})"


def load_failure(path: Path, e: BaseException) -> str:
    """Why torch.load failed on `path`, for a message: what a cheap look at the file finds (empty, a truncated
    zip, text), else "<type>: <torch's first line>" in whole sentences (`_first_line`)."""
    try:
        what = _describe_unloadable(path)
    except OSError:
        what = None
    return what or f"{type(e).__name__}: {_first_line(e)}"


def _first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an error's text, cut only between sentences: torch's message for a damaged zip runs on to
    ~330 characters of advice, and a cut at a fixed length ended it mid-sentence ("...your checkpoint file is")."""
    text = str(e).strip()
    line = text.splitlines()[0].strip() if text else type(e).__name__
    if len(line) <= limit:
        return line
    cut = line.rfind(". ", 0, limit)
    if cut > 0:
        return line[: cut + 1]
    head = line[: limit - 3]  # one sentence longer than `limit`: cut between words
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "..."
