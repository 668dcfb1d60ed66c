"""`lrfp bench` as a library call: plan the grid, check every input up front, run it, write the results.

`run_bench(BenchConfig(...), on_event=...)` is the one function the CLI calls. Checks run cheapest first
(models, protocol, device, --out, data, weights) so that a bad option fails in seconds, not after a run.
Runs go one after another, or several at once in worker processes (`jobs`, default 3 on CUDA: small models
leave a GPU mostly idle at batch 64). Every finished row is on disk before the next one starts.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmark.protocols import Protocol, get_protocol
from benchmark.registry import check_input_size, get_spec, list_models
from lrfp.errors import BenchError
from lrfp.paths import probe_writable

log = logging.getLogger(__name__)

Event = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class BenchConfig:
    data_dir: Path = Path("lrfp-data")
    out: Path = Path("bench-results")
    models: tuple[str, ...] = ()  # empty: every registered model
    protocol: str = "thesis"
    epochs: int | None = None  # None: the protocol's
    seeds: int | None = None  # None: the protocol's
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None
    split: str | None = None
    dataset: str | None = None  # a dataset written by `lrfp publish` (folder or Hub id) instead of the store
    eval_on: str | None = None
    pretrained: bool = True
    input_size: int | None = None  # override every model's input side
    jobs: int | None = None  # concurrent runs; None: 3 on CUDA, 1 on CPU
    batch_size: int | None = None
    precision: str = "auto"  # auto | bf16 | fp32 (auto: bf16 on CUDA and on AMX CPUs, else fp32)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "models", tuple(self.models))


@dataclass
class BenchResult:
    out: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            built = torch.version.cuda or "no CUDA"
            raise BenchError(
                f"--device {device} asked for, but no CUDA device is available (torch {torch.__version__}, "
                f"built with {built}); use --device cpu or --device auto"
            )
        return device
    raise BenchError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")


def resolve_precision(precision: str, device: str) -> bool:
    """Whether to train under bf16 autocast (with channels-last memory format).

    auto = bf16 on CUDA, and on a CPU with AMX (bf16 matrix units: there Model 3 trains ~2x faster than
    in fp32, measured by perf/train_speed); fp32 on other CPUs, where bf16 is emulated and slower. On a
    CPU the engine redoes any bf16 step whose gradients are not finite in fp32 (a oneDNN bug in torch
    2.14.1), counting them in the results' `fp32_retries`.
    """
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if precision == "auto":
        return device.startswith("cuda") or cpu_has_amx()
    raise BenchError(f"--precision must be auto, bf16 or fp32, not {precision!r}")


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux: the `amx_bf16` flag in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def check_out(out: Path) -> None:
    """--out must be a folder we can create and write in (found now, not after an hour of training)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_writable(out)
    except OSError as e:
        raise BenchError(f"--out {out} is not writable: {e.strerror or e}") from e


def plan_runs(cfg: BenchConfig, protocol: Protocol, device: str, bf16: bool | None = None) -> list[Any]:
    """The grid: model x norm x seed, each one RunConfig trained once and evaluated at every budget."""
    from benchmark.engine import RunConfig

    names = list(cfg.models) or list_models()
    specs = [get_spec(n) for n in dict.fromkeys(names)]  # unknown names fail here, listing the known ones
    epochs, budgets = protocol.budgets(cfg.epochs)
    seeds = cfg.seeds if cfg.seeds is not None else protocol.seeds
    if seeds < 1:
        raise BenchError(f"--seeds must be at least 1, not {seeds}")
    bf16 = resolve_precision(cfg.precision, device) if bf16 is None else bf16
    runs = []
    for spec in specs:
        size = cfg.input_size or (spec.quick_input_size if protocol.quick_inputs else spec.input_size)
        check_input_size(spec, size)
        for norm in spec.norms or (None,):
            for seed in range(seeds):
                runs.append(RunConfig(
                    model=spec.name, norm=norm, seed=seed, epochs=epochs, eval_epochs=budgets, input_size=size,
                    optimizer=spec.optimizer, lr=protocol.lr, momentum=protocol.momentum,
                    batch_size=cfg.batch_size or protocol.batch_size, pretrained=cfg.pretrained and spec.pretrained,
                    rotation_degrees=protocol.rotation_degrees, device=device, amp=bf16,
                    channels_last=bf16 or (device == "cpu" and spec.cpu_channels_last),
                    protocol=protocol.name,
                ))
    return runs


def preflight_weights(runs: list[Any]) -> None:
    """Load each pretrained model's ImageNet weights once now: a missing file fails before any training."""
    from benchmark.models import load_pretrained

    for name in dict.fromkeys(r.model for r in runs if r.pretrained):
        load_pretrained(name)


def load_data(cfg: BenchConfig, progress: Callable[[int, int], None] | None = None) -> Any:
    from benchmark.data import load_published, load_store_split

    if cfg.dataset:
        if cfg.split:
            raise BenchError("--split picks a split of the store; it cannot be combined with --dataset")
        return load_published(cfg.dataset)
    return load_store_split(cfg.data_dir, cfg.split, progress=progress)


# -- worker processes (jobs > 1) -----------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(data: Any, eval_sets: dict[str, Any], queue: Any, threads: int | None) -> None:
    import signal

    import torch

    # Ctrl-C is the parent's to handle: it keeps the finished rows and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    if threads:
        torch.set_num_threads(threads)
    _WORKER.update(data=data, eval_sets=eval_sets, queue=queue)


def _worker_run(run_cfg: Any, ckpt_dir: Path, context: dict[str, Any]) -> None:
    from benchmark.engine import run

    q = _WORKER["queue"]
    run(run_cfg, _WORKER["data"], eval_sets=_WORKER["eval_sets"], checkpoint_dir=ckpt_dir, context=context,
        on_epoch=lambda e: q.put(("epoch", e)), on_row=lambda r: q.put(("row", r)))


def _error_row(run_cfg: Any, context: dict[str, Any], error: BaseException) -> dict[str, Any]:
    return {
        "protocol": run_cfg.protocol, "model": run_cfg.model, "norm": run_cfg.norm or "", "config": run_cfg.config_name,
        "seed": run_cfg.seed, "epochs": run_cfg.epochs, "eval_set": "test", "input_size": run_cfg.input_size,
        "pretrained": run_cfg.pretrained, **context, "error": f"{type(error).__name__}: {error}"[:500],
    }


def run_bench(cfg: BenchConfig, on_event: Event | None = None) -> BenchResult:
    """Train and evaluate the grid; rows, summary, plots and checkpoints go to cfg.out."""
    import torch

    from benchmark import report
    from benchmark.data import load_eval_set

    emit = on_event or (lambda kind, payload: None)
    protocol = get_protocol(cfg.protocol)
    device = resolve_device(cfg.device)
    runs = plan_runs(cfg, protocol, device)
    check_out(cfg.out)
    if cfg.threads is not None:
        if cfg.threads < 1:
            raise BenchError(f"--threads must be at least 1, not {cfg.threads}")
        torch.set_num_threads(cfg.threads)
    jobs = cfg.jobs or (3 if device.startswith("cuda") else 1)
    if jobs < 1:
        raise BenchError(f"--jobs must be at least 1, not {jobs}")
    data = load_data(cfg, progress=lambda d, t: emit("load", {"done": d, "total": t}))
    eval_sets = dict([load_eval_set(cfg.eval_on)]) if cfg.eval_on else {}
    preflight_weights(runs)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True

    context = {
        "split": data.audit.get("split", data.name), "data": data.name, "data_kind": data.kind,
        "split_leaked_groups": data.audit.get("leaked_groups"),
        "split_near_duplicate_pairs": data.audit.get("split_near_duplicate_pairs"), "device": device, "device_name": device_name(device),
        "torch_version": torch.__version__, "threads": torch.get_num_threads(), "jobs": jobs,
        "precision": "bf16 autocast + channels-last" if runs and runs[0].amp else "fp32 (channels-last for Models 1-3 on CPU)" if device == "cpu" else "fp32",
    }
    meta = {
        **context, "protocol": protocol.name, "protocol_summary": protocol.summary, "counts": data.counts(),
        "audit": {k: v for k, v in data.audit.items() if k != "split_report"}, "pretrained": cfg.pretrained,
    }
    archived = report.archive_previous(cfg.out)
    if archived:
        log.info("moved the previous results in %s to %s", cfg.out, archived)
        meta["previous_results"] = str(archived)
    writer = report.ResultsWriter(cfg.out)
    ckpt_dir = cfg.out / "checkpoints"
    total_epochs = sum(r.epochs for r in runs)
    emit("plan", {"runs": [r.run_name for r in runs], "total_epochs": total_epochs, "device": device,
                  "device_name": context["device_name"], "jobs": jobs, "counts": meta["counts"]})

    def on_row(row: dict[str, Any]) -> None:
        writer.add_row(row)
        emit("row", row)

    def on_epoch(entry: dict[str, Any]) -> None:
        writer.add_epoch(entry)
        emit("epoch", entry)

    t0 = time.perf_counter()
    interrupted = False
    try:
        if jobs == 1:
            from benchmark.engine import run

            for run_cfg in runs:
                emit("run_start", {"run": run_cfg.run_name})
                try:
                    run(run_cfg, data, eval_sets=eval_sets, checkpoint_dir=ckpt_dir, context=context,
                        on_epoch=on_epoch, on_row=on_row)
                except (KeyboardInterrupt, BenchError):
                    raise
                except Exception as e:  # one failed run is a row with its error, not the end of the grid
                    log.warning("run %s failed: %s: %s", run_cfg.run_name, type(e).__name__, e)
                    log.debug("run %s failed", run_cfg.run_name, exc_info=True)
                    on_row(_error_row(run_cfg, context, e))
        else:
            _run_parallel(runs, data, eval_sets, ckpt_dir, context, jobs, cfg.threads, on_row, on_epoch, emit)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        meta["wall_seconds"] = time.perf_counter() - t0
        meta["interrupted"] = interrupted
        files = [report.write_markdown(cfg.out, writer.rows, meta)]
        if writer.rows or writer.history:
            try:
                files += report.write_plots(cfg.out, writer.rows, writer.history)
            except Exception:  # a plot must never cost the rows
                log.exception("plotting failed")
    return BenchResult(out=cfg.out, rows=writer.rows, summary=report.summarize(writer.rows), files=files, meta=meta)


def _run_parallel(runs, data, eval_sets, ckpt_dir, context, jobs, threads, on_row, on_epoch, emit) -> None:
    """Several runs at once, each in a worker process; their rows come back through a queue."""
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    manager = ctx.Manager()
    q = manager.Queue()
    per_job = max(1, (threads or os.cpu_count() or 1) // jobs) if not runs[0].device.startswith("cuda") else 1
    pending = {}
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(data, eval_sets, q, per_job))
    try:
        for run_cfg in runs:
            pending[pool.submit(_worker_run, run_cfg, ckpt_dir, context)] = run_cfg
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, on_row, on_epoch, queue_mod)
            for fut in done:
                run_cfg = pending.pop(fut)
                err = fut.exception()
                if isinstance(err, BenchError):
                    raise err
                if err is not None:
                    on_row(_error_row(run_cfg, context, err))
                emit("run_end", {"run": run_cfg.run_name})
        _drain(q, on_row, on_epoch, queue_mod)
        pool.shutdown(wait=True)
    except BaseException:
        # Keep what already arrived, then stop the workers now (shutdown() alone would let the
        # running runs finish first). ProcessPoolExecutor has no public way to do this.
        _drain(q, on_row, on_epoch, queue_mod)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        manager.shutdown()


def _drain(q: Any, on_row: Callable, on_epoch: Callable, queue_mod: Any) -> None:
    while True:
        try:
            kind, payload = q.get_nowait()
        except queue_mod.Empty:
            return
        (on_row if kind == "row" else on_epoch)(payload)
