"""Training and evaluation of one run: `train_one_epoch`, `evaluate`, `run` (torchvision references style).

One run = one model x config x seed, trained once for the longest budget and evaluated on test after each
budget (with a constant learning rate, stopping at 30 of an 80-epoch run is the same as a 30-epoch run).
Data stays on the device as uint8; each batch is augmented and normalized there. On CUDA: bf16 autocast,
channels-last, cudnn autotuning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from benchmark.data import IMAGENET_MEAN, IMAGENET_STD, ROTATION_INTERPOLATION, BenchData, Subset, prepare_batch
from benchmark.metrics import classification_metrics
from benchmark.baselines import count_macs, count_params
from benchmark.registry import create_model
from lrfp import LABELS, __version__

log = logging.getLogger(__name__)

EVAL_BATCH = 256
CHECKPOINT_FORMAT = 1
"""Version of the checkpoint's layout (`lrfp predict` refuses a newer one). 1: state_dict, config, epoch,
val_accuracy, val_loss, classes, input_size, normalization, split (lrfp 0.1.0 wrote these without the marker)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run; saved in its checkpoint."""

    model: str
    norm: str | None
    seed: int
    epochs: int
    eval_epochs: tuple[int, ...]
    input_size: int
    optimizer: str  # "sgd" | "adam"
    lr: float = 0.001
    momentum: float = 0.9
    batch_size: int = 64
    pretrained: bool = False
    rotation_degrees: float = 15.0
    rotation_interpolation: str = ROTATION_INTERPOLATION  # torchvision RandomRotation's default, "nearest"
    device: str = "cpu"
    amp: bool = False  # bf16 autocast (the harness sets it on CUDA)
    channels_last: bool = False
    protocol: str = "thesis"
    # torch.compile the training forward ("" off; "default", "reduce-overhead" = with CUDA graphs). Opt-in:
    # not yet measured on a GPU (issue 12), and on a CPU the compile time outweighs a short run.
    compile: str = ""
    # replay each training step as a CUDA graph (benchmark/cudagraph.py). Opt-in: not yet measured on a GPU.
    cuda_graph: bool = False

    @property
    def config_name(self) -> str:
        return f"{self.model}-{self.norm}" if self.norm else self.model

    @property
    def run_name(self) -> str:
        return f"{self.config_name}-s{self.seed}"


@dataclass
class RunResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _autocast(device: str, enabled: bool, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device's type (CUDA, or a CPU), or nothing. cache=False for CUDA graph capture."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16, cache_enabled=cache)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """The thesis's optimizer (Adam for Model 3, else SGD with momentum) at cfg.lr.

    foreach=True everywhere: bitwise the same updates as the per-parameter loop (checked on Model 3), and on a
    CPU, where torch does not pick it by default, Adam's step took 5.5 instead of 56 ms (loaded 2-core EPYC).
    With cfg.cuda_graph on CUDA, Adam keeps its step count on the device (`capturable=True`, which graph
    capture requires); SGD with momentum has no host-side state to capture.
    """
    if cfg.optimizer == "adam":
        capturable = cfg.cuda_graph and cfg.device.startswith("cuda")
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True, capturable=capturable)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, foreach=True)


class TrainStep:
    """One training step of `model` on a normalized batch: forward (bf16 autocast if cfg.amp), cross-entropy,
    backward, optimizer step; the epoch's loss sum and correct count stay on the device (no host sync).

    Called as step(xb, yb): xb float32 B,3,H,W (normalized, in the run's memory format), yb int64 B, both on
    cfg.device. `loss_sum` (sum of per-batch mean loss x B) and `correct` accumulate until `reset()`.

    With cfg.cuda_graph the step is replayed as a CUDA graph (`benchmark.cudagraph.GraphedStep`; it lives
    across epochs, so make one per run). `graph_factory` is the tests' stand-in for `torch.cuda.CUDAGraph`.
    On a CPU in bf16, a step whose gradients are not finite is redone in fp32 (see `_step`), counted in
    `fp32_retries`.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: RunConfig,
                 graph_factory: Callable[[], Any] | None = None) -> None:
        self.model, self.optimizer, self.cfg = model, optimizer, cfg
        self.loss_sum = torch.zeros((), device=cfg.device)
        self.correct = torch.zeros((), device=cfg.device, dtype=torch.long)
        self.fp32_retries = 0
        self._cpu_guard = cfg.amp and not cfg.device.startswith("cuda")
        self._call: Callable[[torch.Tensor, torch.Tensor], None]
        if cfg.cuda_graph:
            from benchmark.cudagraph import GraphedStep

            self.graphed: Any = GraphedStep(self._step, graph_factory=graph_factory)
            self._call = self.graphed
        else:
            self.graphed = None
            self._call = lambda xb, yb: self._step(xb, yb, True)

    def reset(self) -> None:
        """Zero the sums in place (a captured graph keeps adding into these very tensors)."""
        self.loss_sum.zero_()
        self.correct.zero_()
        self.fp32_retries = 0

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        self._call(xb, yb)

    def _step(self, xb: torch.Tensor, yb: torch.Tensor, set_to_none: bool) -> None:
        cfg = self.cfg
        logits, loss = self._forward_backward(xb, yb, cfg.amp, set_to_none)
        # On a CPU, oneDNN's bf16 weight gradients sometimes come out NaN (torch 2.14.1: odd batch sizes such
        # as a remainder batch of 41, never a full 64 in our trials): such a step is recomputed in fp32 before
        # the optimizer sees it, and counted. (CPU only: no CUDA graph is ever captured around this sync.)
        if self._cpu_guard and not _grads_finite(self.model):
            logits, loss = self._forward_backward(xb, yb, False, set_to_none)
            self.fp32_retries += 1
        self.optimizer.step()
        self.loss_sum += loss.detach() * xb.shape[0]
        self.correct += (logits.detach().argmax(1) == yb).sum()

    def _forward_backward(self, xb: torch.Tensor, yb: torch.Tensor, amp: bool, set_to_none: bool
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        with _autocast(self.cfg.device, amp, cache=not self.cfg.cuda_graph):
            logits = self.model(xb)
        loss = F.cross_entropy(logits.float(), yb)
        self.optimizer.zero_grad(set_to_none=set_to_none)
        loss.backward()
        return logits, loss


def train_one_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    cfg: RunConfig, generator: torch.Generator, step: TrainStep | None = None,
) -> dict[str, float]:
    """One pass over (x uint8 N,3,H,W on device, y int64 N on device) in shuffled batches of cfg.batch_size.

    step: the run's `TrainStep` of (model, optimizer), which must outlive the epoch when it holds a CUDA graph;
    None makes a plain one for this epoch.
    Returns loss, accuracy, images, seconds and fp32_retries (CPU bf16 steps redone in fp32, see TrainStep).
    Raises ValueError when cfg.cuda_graph is set without a step (a graph captured per epoch would never be
    replayed across epochs) or when no batch has two or more images.
    """
    model.train()
    if step is None:
        if cfg.cuda_graph:
            raise ValueError("cfg.cuda_graph needs the run's TrainStep, made once and passed to every epoch")
        step = TrainStep(model, optimizer, cfg)
    step.reset()
    n = x.shape[0]
    _sync(cfg.device)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=generator, device=x.device)
    seen = 0
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for i in range(0, n, cfg.batch_size):
        idx = perm[i : i + cfg.batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a batch of one; drop such a remainder
            continue
        # index_select, not x[idx]: the same rows, 0.02 vs 0.46 ms for 64 uint8 images of 64 px (perf/batch_prep.py)
        xb = prepare_batch(x.index_select(0, idx), train=True, generator=generator, degrees=cfg.rotation_degrees,
                           interpolation=cfg.rotation_interpolation)
        step(xb.contiguous(memory_format=memory_format), y.index_select(0, idx))
        seen += len(idx)
    if not seen:
        raise ValueError(f"no training batch of two or more images (the training set has {n})")
    loss_sum, correct = float(step.loss_sum), int(step.correct)  # the epoch's one host sync
    seconds = time.perf_counter() - t0
    return {"loss": loss_sum / seen, "accuracy": correct / seen, "images": seen, "seconds": seconds,
            "fp32_retries": step.fp32_retries}


def _grads_finite(model: torch.nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)))


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig) -> dict[str, Any]:
    """Class probabilities and per-image cross-entropy on (x, y), no augmentation; plus seconds taken."""
    model.eval()
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    _sync(cfg.device)
    t0 = time.perf_counter()
    probs, losses = [], []
    for i in range(0, x.shape[0], EVAL_BATCH):
        xb = prepare_batch(x[i : i + EVAL_BATCH], train=False).contiguous(memory_format=memory_format)
        with _autocast(cfg.device, cfg.amp):
            logits = model(xb).float()
        probs.append(logits.softmax(1))
        losses.append(F.cross_entropy(logits, y[i : i + EVAL_BATCH], reduction="none"))
    prob = torch.cat(probs).cpu().numpy()
    loss = torch.cat(losses).cpu().numpy()
    _sync(cfg.device)
    seconds = time.perf_counter() - t0
    return {"prob": prob, "losses": loss, "seconds": seconds, "accuracy": float((prob.argmax(1) == y.cpu().numpy()).mean()),
            "loss": float(loss.mean())}


def to_device(sub: Subset, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A subset as (uint8 N,3,size,size, int64 labels N), both on `device`."""
    return sub.tensor(size).to(device), torch.as_tensor(sub.labels, device=device)


def row_identity(cfg: RunConfig, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keys that say which run a result row belongs to (a failed run's row has these and `error`)."""
    return {
        "protocol": cfg.protocol, "model": cfg.model, "norm": cfg.norm or "", "config": cfg.config_name,
        "seed": cfg.seed, "input_size": cfg.input_size, "pretrained": cfg.pretrained, "optimizer": cfg.optimizer,
        "lr": cfg.lr, "momentum": cfg.momentum if cfg.optimizer == "sgd" else None, "batch_size": cfg.batch_size,
        "amp": "bf16" if cfg.amp else "fp32", "channels_last": cfg.channels_last, "compile": cfg.compile or "off",
        "cuda_graph": cfg.cuda_graph, **(context or {}),
    }


def error_row(cfg: RunConfig, context: dict[str, Any] | None, error: BaseException) -> dict[str, Any]:
    """The result row of a run that failed: its identity, its last budget, and the error (type: message)."""
    return {**row_identity(cfg, context), "epochs": cfg.epochs, "eval_set": "test",
            "error": f"{type(error).__name__}: {error}"[:500]}


class CheckpointError(OSError):
    """A checkpoint (or its sidecar or lock file) cannot be written; the message names the file and the OS error."""


def save_best_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> bool:
    """See `_save_best_checkpoint`; an OSError becomes a CheckpointError naming the file and the reason in words,
    e.g. "cannot write the checkpoint out/checkpoints/model3.pt: Permission denied"."""
    try:
        return _save_best_checkpoint(path, state, meta)
    except OSError as e:
        where = str(e.filename or path)
        # this save's temporary files are the .pt and its sidecar to the user (a rename's error names its source);
        # another file (the lock, the sidecar, a stale temporary file that will not go) is named too
        sidecar = path.with_suffix(".json")
        where = {f"{path}.{os.getpid()}.tmp": str(path), f"{sidecar}.{os.getpid()}.tmp": str(sidecar)}.get(where, where)
        side = "" if where == str(path) else f" ({where})"
        raise CheckpointError(f"cannot write the checkpoint {path}{side}: {e.strerror or e}") from e


def _remove_stale_tmp(path: Path) -> None:
    """Remove the temporary files an interrupted save of this checkpoint left (`<name>.<pid>.tmp` of the .pt and
    of its sidecar). Called with the lock held, so no save of another process is writing them."""
    for name in (path.name, path.with_suffix(".json").name):
        for tmp in path.parent.glob(f"{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def _save_best_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Write `state` + meta to `path` if its validation accuracy beats the one there (lower loss breaks ties).

    The pair `<config>.pt` + `<config>.json` (the sidecar: meta and the .pt's SHA-256) is written to temporary
    files and renamed into place, the .pt first. The earlier checkpoint's score comes from its sidecar where that
    describes the .pt beside it, else from the .pt itself (a crash between the two renames, a truncated or
    edited sidecar: a warning names it); a .pt that cannot be loaded counts as no earlier checkpoint (a warning
    names it) and this one replaces it. So the pair never loses the better checkpoint to a crash.
    Concurrent runs of the same config (other seeds, other processes) serialize on a lock file; stale `*.tmp`
    files of an interrupted save of this config are removed first. Returns whether it was written.
    Raises OSError (`save_best_checkpoint`: CheckpointError) when a file cannot be written.
    """
    from lrfp.paths import file_sha256

    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = path.with_suffix(".json")
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_stale_tmp(path)
        old = _earlier_score(path, sidecar)
        if old is not None and old >= (meta["val_accuracy"], -meta["val_loss"]):
            return False
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:  # (opened here: torch's own open names neither the file nor errno)
                torch.save({"state_dict": state, **meta}, fh)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _write_sidecar(sidecar, meta, file_sha256(path))
        return True


def _write_sidecar(sidecar: Path, meta: dict[str, Any], pt_sha256: str) -> None:
    tmp = sidecar.with_name(sidecar.name + f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({**meta, "pt_sha256": pt_sha256}, indent=2, sort_keys=True, default=str))
        os.replace(tmp, sidecar)
    finally:
        tmp.unlink(missing_ok=True)


def _earlier_score(path: Path, sidecar: Path) -> tuple[float, float] | None:
    """(val_accuracy, -val_loss) of the checkpoint at `path`, or None where there is none (or it is damaged)."""
    from lrfp.paths import file_sha256

    if not path.is_file():
        return None  # a sidecar alone describes nothing
    why = None
    sha = file_sha256(path)
    try:
        old = json.loads(sidecar.read_text())
        if old.get("pt_sha256") == sha:
            return float(old["val_accuracy"]), -float(old["val_loss"])
        if "pt_sha256" in old:  # (sidecars of lrfp 0.1 have no checksum: their .pt is read quietly)
            why = f"the sidecar {sidecar} does not describe the checkpoint beside it (a crash between writing the two?)"
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        why = f"the sidecar {sidecar} cannot be read ({type(e).__name__}: {e})"
    try:  # the .pt holds the same metadata
        obj = torch.load(path, map_location="cpu", weights_only=True)
        score = float(obj["val_accuracy"]), -float(obj["val_loss"])
    except Exception as e:  # torch raises RuntimeError, EOFError, pickle and zip errors for a damaged file
        from lrfp.predict.checkpoint import load_failure

        log.warning("the earlier checkpoint %s is damaged: %s%s; it counts as no earlier checkpoint, and this run's "
                    "best replaces it", path, load_failure(path, e), f"; and {why}" if why else "")
        return None
    if why:
        log.warning("%s; the earlier score is read from %s itself, and the sidecar is written again", why, path)
    _write_sidecar(sidecar, {k: v for k, v in obj.items() if k != "state_dict"}, sha)
    return score


class _RunBook:
    """One run's bookkeeping after each training epoch: validation, history, best weights, test rows at
    each budget, and the checkpoint at the end (shared by `run` and `run_stacked`)."""

    def __init__(self, cfg: RunConfig, data: BenchData, tensors: dict[str, Any], eval_sets: dict[str, Subset] | None,
                 checkpoint_dir: Path | None, context: dict[str, Any] | None, params: int, macs: int,
                 on_epoch: Callable[[dict[str, Any]], None] | None, on_row: Callable[[dict[str, Any]], None] | None) -> None:
        self.cfg, self.data, self.t, self.eval_sets = cfg, data, tensors, eval_sets or {}
        self.checkpoint_dir, self.context, self.on_epoch, self.on_row = checkpoint_dir, context or {}, on_epoch, on_row
        self.base = {**row_identity(cfg), "params": params, "macs": macs, "n_train": len(tensors["train"][1]),
                     "n_val": len(tensors["validation"][1]), "n_test": len(tensors["test"][1]), **self.context}
        self.result = RunResult()
        self.best: tuple[tuple[float, float], dict[str, Any], int] | None = None
        self.train_seconds, self.train_images, self.fp32_retries = 0.0, 0, 0

    def after_epoch(self, epoch: int, model: torch.nn.Module, tr: dict[str, Any]) -> None:
        cfg = self.cfg
        if not math.isfinite(tr["loss"]):
            raise FloatingPointError(f"training loss became {tr['loss']} in epoch {epoch}")
        self.train_seconds += tr["seconds"]
        self.train_images += tr["images"]
        self.fp32_retries += tr.get("fp32_retries", 0)
        va = evaluate(model, *self.t["validation"], cfg)
        if not math.isfinite(va["loss"]):  # the last step of the epoch left non-finite weights
            raise FloatingPointError(f"validation loss became {va['loss']} after epoch {epoch}")
        entry = {
            "run": cfg.run_name, "config": cfg.config_name, "model": cfg.model, "norm": cfg.norm or "",
            "seed": cfg.seed, "epoch": epoch, "epochs": cfg.epochs, "train_loss": tr["loss"],
            "train_accuracy": tr["accuracy"], "val_loss": va["loss"], "val_accuracy": va["accuracy"],
            "epoch_seconds": tr["seconds"], "fp32_retries": tr.get("fp32_retries", 0),
        }
        self.result.history.append(entry)
        key = (va["accuracy"], -va["loss"])
        if self.checkpoint_dir is not None and (self.best is None or key > self.best[0]):
            self.best = (key, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}, epoch)
        if self.on_epoch:
            self.on_epoch(entry)
        if epoch not in cfg.eval_epochs:
            return
        evals = [("test", *self.t["test"], self.data.subsets["test"])] + [
            (n, *self.t[f"eval:{n}"], sub) for n, sub in self.eval_sets.items()]
        for set_name, x, y, sub in evals:
            ev = evaluate(model, x, y, cfg)
            row = {
                **self.base, "epochs": epoch, "eval_set": set_name,
                **classification_metrics(sub.labels, ev["prob"], ev["losses"], sub.face_px, LABELS),
                "val_accuracy": va["accuracy"], "val_loss": va["loss"],
                "train_accuracy": tr["accuracy"], "train_loss": tr["loss"],
                "train_seconds": round(self.train_seconds, 3),
                "train_images_per_s": round(self.train_images / self.train_seconds, 1) if self.train_seconds else None,
                "infer_images_per_s": round(len(y) / ev["seconds"], 1) if ev["seconds"] else None,
                "fp32_retries": self.fp32_retries,
                "error": "",
            }
            self.result.rows.append(row)
            if self.on_row and epoch < max(cfg.eval_epochs):  # the last budget's rows: see finish()
                self.on_row(row)

    def finish(self) -> RunResult:
        """Save the best checkpoint (or keep the better one there), THEN pass the last budget's rows to `on_row`.

        A run is finished (`benchmark.resume`) when its rows of every budget are on disk, so those of the last
        budget are written only once its checkpoint step is done: an interrupt or a kill before leaves the run
        unfinished, and it is trained again on resume. (The rows of earlier budgets go out as they come, so an
        interrupted grid's report shows them.) A checkpoint that cannot be written raises CheckpointError.
        """
        cfg = self.cfg
        if self.checkpoint_dir is not None and self.best is not None:
            (val_acc, neg_loss), state, epoch = self.best
            meta = {"checkpoint_format": CHECKPOINT_FORMAT, "lrfp_version": __version__,
                    "config": asdict(cfg), "epoch": epoch, "val_accuracy": val_acc, "val_loss": -neg_loss,
                    "classes": list(LABELS), "input_size": cfg.input_size,
                    "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
                    "split": self.context.get("split")}
            save_best_checkpoint(self.checkpoint_dir / f"{cfg.config_name}.pt", state, meta)
        if self.on_row:
            last = max(cfg.eval_epochs)
            for row in self.result.rows:
                if row["epochs"] == last:
                    self.on_row(row)
        return self.result


def _tensors(cfg: RunConfig, data: BenchData, eval_sets: dict[str, Subset] | None) -> dict[str, Any]:
    t = {s: to_device(data.subsets[s], cfg.input_size, cfg.device) for s in ("train", "validation", "test")}
    t.update({f"eval:{n}": to_device(sub, cfg.input_size, cfg.device) for n, sub in (eval_sets or {}).items()})
    return t


def run(
    cfg: RunConfig, data: BenchData, *, eval_sets: dict[str, Subset] | None = None,
    checkpoint_dir: Path | None = None, context: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None, on_row: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train `cfg` on data's train subset, watch validation every epoch, evaluate test at each budget.

    Each result row of an earlier budget is passed to `on_row` as soon as it exists (so an interrupted grid keeps
    it); the run's best-on-validation weights go to `checkpoint_dir/<config>.pt` if they beat what is there, and
    only then are the last budget's rows passed on (a run with all its rows has its checkpoint step done).
    Raises CheckpointError when the checkpoint cannot be written.
    """
    device = cfg.device
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, norm=cfg.norm, pretrained=cfg.pretrained, input_size=cfg.input_size)
    params, macs = count_params(model), count_macs(model, cfg.input_size)
    model = model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed)
    # the compiled module shares the parameters; checkpoints and evaluation use `model` (no _orig_mod. keys)
    train_model = torch.compile(model, mode=cfg.compile) if cfg.compile else model

    step = TrainStep(train_model, optimizer, cfg)  # one per run: a CUDA graph is captured once and replayed

    t = _tensors(cfg, data, eval_sets)
    book = _RunBook(cfg, data, t, eval_sets, checkpoint_dir, context, params, macs, on_epoch, on_row)
    for epoch in range(1, cfg.epochs + 1):
        book.after_epoch(epoch, model, train_one_epoch(train_model, optimizer, *t["train"], cfg, generator, step))
    return book.finish()


def run_stacked(
    cfgs: list[RunConfig], data: BenchData, *, eval_sets: dict[str, Subset] | None = None,
    checkpoint_dir: Path | None = None, context: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None, on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[RunResult]:
    """The seeds of one config trained together as one stacked model (`benchmark.stacked`), each with the rows,
    history and checkpoint `run` would give it (equal up to float rounding). `train_seconds` of each is the
    shared wall time. cfgs: the same config, different seeds; fp32 or CUDA bf16 (no CPU bf16 NaN guard)."""
    from dataclasses import replace

    from benchmark.stacked import StackedSeeds

    cfg0 = cfgs[0]
    device = cfg0.device
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    models = []
    for cfg in cfgs:
        torch.manual_seed(cfg.seed)
        models.append(create_model(cfg.model, norm=cfg.norm, pretrained=cfg.pretrained, input_size=cfg.input_size))
    params, macs = count_params(models[0]), count_macs(models[0], cfg0.input_size)
    stacked = StackedSeeds([m.to(device) for m in models], cfg0.optimizer, cfg0.lr, cfg0.momentum,
                           cuda_graph=cfg0.cuda_graph)
    generators = [torch.Generator(device=device).manual_seed(cfg.seed) for cfg in cfgs]
    t = _tensors(cfg0, data, eval_sets)
    context = {**(context or {}), "stacked_seeds": len(cfgs)}
    # evaluation sees each seed as a plain module in NCHW
    books = [_RunBook(replace(cfg, channels_last=False), data, t, eval_sets, checkpoint_dir, context, params, macs,
                      on_epoch, on_row) for cfg in cfgs]
    for epoch in range(1, cfg0.epochs + 1):
        stats = stacked.train_one_epoch(*t["train"], generators, cfg0.batch_size, cfg0.rotation_degrees, amp=cfg0.amp,
                                        interpolation=cfg0.rotation_interpolation)
        for k, book in enumerate(books):
            book.after_epoch(epoch, stacked.model(k), stats[k])
    return [book.finish() for book in books]
