"""`lrfp bench` as a library call: plan the grid, check every input up front, run it, write the results.

`run_bench(BenchConfig(...), on_event=...)` is the one function the CLI calls. Checks run cheapest first:
`BenchConfig.check()` (the options alone, exit 2), then the device, --out, the data and the weights (what
the machine and the store allow), so that a bad option fails in seconds, not after a run. Progress comes
as typed events (`benchmark.events`). Runs go one after another, or several at once in worker processes
(`jobs`, default 3 on CUDA) on `lrfp.procpool.SpawnPool`. Every finished row is on disk before the next one
starts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from benchmark.events import (DecodeProgress, EpochDone, EvalOverlap, GridFinished, GridPlanned, GridResumed, Notice,
                              OnEvent, PrecisionChosen, PreviousMoved, RowWritten, RunEnded, RunStarted)
from benchmark.protocols import Protocol, get_protocol
from benchmark.registry import check_input_size, get_spec, list_models
from lrfp.errors import BenchError, BenchUsageError, InputError, disk_full
from lrfp.machine import cpu_name, usable_cpus
from lrfp.paths import probe_writable, unwritable_message

log = logging.getLogger(__name__)


PRECISIONS = ("auto", "bf16", "fp32")
COMPILE_MODES = ("off", "default", "reduce-overhead")


@dataclass(frozen=True)
class BenchConfig:
    """Everything `lrfp bench` was asked for; `check()` refuses what cannot work before any work starts."""

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
    precision: str = "auto"  # auto | bf16 | fp32 (auto: bf16 on CUDA; on a CPU whichever a short timed probe finds faster)
    compile: str = "off"  # off | default | reduce-overhead (torch.compile; opt-in, unmeasured on a GPU so far)
    stack_seeds: bool = False  # train a config's seeds as one vmapped model (benchmark/stacked.py); opt-in, unmeasured on a GPU
    cuda_graph: bool = False  # replay each training step as a CUDA graph (benchmark/cudagraph.py); opt-in, unmeasured on a GPU
    fresh: bool = False  # start a new benchmark even where --out holds one of the same plan (benchmark/resume.py)

    def __post_init__(self) -> None:
        if not str(self.out).strip():  # Path("") is the current folder: never write results there by accident
            raise BenchUsageError("--out is empty: give the folder for the results, e.g. --out bench-results")
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "models", tuple(self.models))

    def check(self) -> None:
        """Refuse options that cannot work, cheapest first; nothing is created or loaded.

        Raises BenchUsageError (exit 2) naming the option: an unknown protocol, model or precision, a
        malformed --device, a number below its minimum, --split with --dataset, an input size a model
        cannot take, an --eval-on/--dataset path that is missing or a file.
        """
        from benchmark.data import check_local_folder

        protocol = get_protocol(self.protocol)
        for name, value, least in (("--epochs", self.epochs, 1), ("--seeds", self.seeds, 1), ("--threads", self.threads, 1),
                                   ("--jobs", self.jobs, 1), ("--input-size", self.input_size, 1),
                                   # BatchNorm cannot train on one image: a batch of one would be skipped
                                   ("--batch-size", self.batch_size, 2)):
            if value is not None and value < least:
                raise BenchUsageError(f"{name} must be at least {least}, not {value}")
        if self.threads is not None and self.threads > OVERSUBSCRIBE * (cores := usable_cpus()):
            # torch's threads then wait for each other: a 6 s run did not end in 120 s with --threads 1000 on 2 cores
            raise BenchUsageError(f"--threads {self.threads} is far more than the {cores} CPU core{'s' if cores != 1 else ''} "
                                  "this process may use: torch's threads would wait for each other and the run crawl; "
                                  f"give --threads {cores} (or leave it out: torch's own default)")
        if not _DEVICE.fullmatch(self.device):
            raise BenchUsageError(f"--device must be auto, cpu, cuda or cuda:N, not {self.device!r}")
        if self.compile not in COMPILE_MODES:
            raise BenchUsageError(f"--compile must be {', '.join(COMPILE_MODES)}, not {self.compile!r}")
        if self.precision not in PRECISIONS:
            raise BenchUsageError(f"--precision must be auto, bf16 or fp32, not {self.precision!r}")
        if self.cuda_graph and self.compile != "off":
            raise BenchUsageError(f"--cuda-graph cannot be combined with --compile {self.compile}: both change how the "
                                  "step is launched; pick one (--compile reduce-overhead captures CUDA graphs itself)")
        if self.cuda_graph and not (self.device == "auto" or self.device.startswith("cuda")):
            raise BenchUsageError(f"--cuda-graph needs a CUDA device, not --device {self.device}")
        if self.stack_seeds and self.jobs not in (None, 1):
            raise BenchUsageError(f"--stack-seeds trains a config's seeds in one process; it cannot be combined with "
                                  f"--jobs {self.jobs}: drop --jobs (or give --jobs 1), or drop --stack-seeds to train "
                                  "runs in parallel processes")
        if self.dataset and self.split:
            raise BenchUsageError("--split picks a split of the store; it cannot be combined with --dataset (a "
                                  "published dataset brings its own split): drop --split, or drop --dataset")
        for name in self.models or list_models():
            spec = get_spec(name)  # unknown names fail here, listing the known ones
            check_input_size(spec, self.input_size or (spec.quick_input_size if protocol.quick_inputs else spec.input_size))
        if self.dataset:
            check_local_folder("--dataset", self.dataset)
        if self.eval_on:
            check_local_folder("--eval-on", self.eval_on)
        check_out_path(self.out)


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


OVERSUBSCRIBE = 4  # --threads above this many per usable core is refused; above one per core, a Notice


@dataclass
class BenchResult:
    out: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The rows of runs that failed (their `error` says why)."""
        return [r for r in self.rows if r.get("error")]


def resolve_device(device: str) -> str:
    """auto -> cuda if available else cpu; cuda[:N] must be available (BenchError, exit 1, if not)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA"
        raise BenchError(
            f"--device {device} asked for, but no CUDA device is available (torch {torch.__version__}, "
            f"built with {built}); use --device cpu or --device auto"
        )
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BenchUsageError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")
    return device


def resolve_precision(precision: str, device: str) -> bool | None:
    """Whether to train under bf16 autocast (with channels-last): True, False, or None = probe each config.

    auto = bf16 on CUDA (measured on an H200, issue 12); on a CPU, None: `benchmark.precision.probe` times
    each config both ways and bf16 is kept where it is >= 10% faster. On a CPU the engine redoes any bf16 step
    whose gradients are not finite in fp32 (a oneDNN bug), counting them in the results' `fp32_retries`.
    """
    if precision not in PRECISIONS:
        raise BenchUsageError(f"--precision must be auto, bf16 or fp32, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    return True if device.startswith("cuda") else None


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_name()} ({os.cpu_count()} cores)"


def check_out_path(out: Path) -> None:
    """Raise BenchUsageError (exit 2) if --out is a file, or lies under a file (`--out notes.txt/run1`): no
    folder can be made there. Nothing is created; permissions are checked by `check_out`."""
    if out.exists() and not out.is_dir():
        raise BenchUsageError(f"--out {out} is a file, not a folder: give a folder for the results (created if missing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BenchUsageError(f"--out {out}: {parent} is a file, so no folder can be made under it; give "
                                      "another --out")
            break


def check_out(out: Path) -> None:
    """--out must be a folder we can create and write in, and so must its checkpoints/ folder and the results
    files already there (found now, not after an hour of training). Raises BenchError (exit 1) naming the path."""
    from benchmark.report import CHECKPOINTS, HISTORY_JSONL, RESULTS_CSV, RESULTS_JSONL, RESULTS_MD
    from benchmark.resume import PLAN_JSON

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_writable(out)
    except OSError as e:
        raise BenchError(unwritable_message("--out", out, e)) from e
    where = out / CHECKPOINTS
    try:
        if where.is_dir():
            probe_writable(where)
            for lock in [where / ".lock"] if (where / ".lock").exists() else []:
                where = lock
                open(lock, "a").close()
        for name in (RESULTS_JSONL, RESULTS_CSV, RESULTS_MD, HISTORY_JSONL, PLAN_JSON):
            where = out / name
            if where.is_file():
                open(where, "a").close()  # opened for appending, not changed
    except OSError as e:
        raise BenchError(f"--out {out}: {where} is not writable ({e.strerror or e}), so results or checkpoints "
                         "could not be saved after training; make it writable, or give another --out") from e


def plan_runs(cfg: BenchConfig, protocol: Protocol, device: str, bf16: bool | None = None) -> list[Any]:
    """The grid: model x norm x seed, each one RunConfig trained once and evaluated at every budget.

    `bf16` None: as --precision says, with `auto` on a CPU planned as fp32 until `choose_precision` probes it.
    """
    from benchmark.engine import RunConfig

    names = list(cfg.models) or list_models()
    specs = [get_spec(n) for n in dict.fromkeys(names)]  # unknown names fail here, listing the known ones
    epochs, budgets = protocol.budgets(cfg.epochs)
    seeds = cfg.seeds if cfg.seeds is not None else protocol.seeds  # >= 1: BenchConfig.check()
    if bf16 is None:
        bf16 = bool(resolve_precision(cfg.precision, device))
    runs = []
    for spec in specs:
        size = cfg.input_size if cfg.input_size is not None else (
            spec.quick_input_size if protocol.quick_inputs else spec.input_size)
        check_input_size(spec, size)
        for norm in spec.norms or (None,):
            for seed in range(seeds):
                runs.append(RunConfig(
                    model=spec.name, norm=norm, seed=seed, epochs=epochs, eval_epochs=budgets, input_size=size,
                    optimizer=spec.optimizer, lr=protocol.lr, momentum=protocol.momentum,
                    batch_size=cfg.batch_size if cfg.batch_size is not None else protocol.batch_size,
                    pretrained=cfg.pretrained and spec.pretrained,
                    rotation_degrees=protocol.rotation_degrees, rotation_interpolation=protocol.rotation_interpolation,
                    device=device, amp=bf16,
                    channels_last=bf16 or (device == "cpu" and spec.cpu_channels_last),
                    protocol=protocol.name, compile="" if cfg.compile == "off" else cfg.compile,
                    cuda_graph=cfg.cuda_graph,
                ))
    return runs


def choose_precision(runs: list[Any], emit: OnEvent) -> list[Any]:
    """`--precision auto` on a CPU: bf16 for the configs where the probe finds it >= 10% faster, else fp32."""
    from dataclasses import replace

    from benchmark.precision import probe

    chosen: dict[str, bool] = {}  # config -> bf16
    out = []
    for r in runs:
        if r.config_name not in chosen:
            try:
                res = probe(r)
            except Exception as e:  # the run itself will fail the same way and become an error row
                error = f"{type(e).__name__}: {e}"
                log.info("precision probe of %s failed (%s); planning fp32", r.config_name, error)
                chosen[r.config_name] = False
                emit(PrecisionChosen(r.config_name, r.input_size, False, None, None, False, error=error))
            else:
                chosen[r.config_name] = res.bf16
                emit(PrecisionChosen(r.config_name, r.input_size, res.bf16, res.fp32_ms, res.bf16_ms, res.cached))
        if chosen[r.config_name]:
            r = replace(r, amp=True, channels_last=True)
        out.append(r)
    return out


def preflight_weights(runs: list[Any]) -> None:
    """Load each pretrained model's ImageNet weights once now: a missing file fails before any training."""
    from benchmark.baselines import load_pretrained

    for name in dict.fromkeys(r.model for r in runs if r.pretrained):
        load_pretrained(name)


def check_eval_overlap(cfg: BenchConfig, data: Any, eval_sets: dict[str, Any], emit: OnEvent) -> dict[str, Any]:
    """Count the --eval-on images that are also in the benchmarked subsets (benchmark.overlap); emit
    EvalOverlap when some are. Raises InputError (exit 2) when every one is an exact copy: that "cross-dataset"
    accuracy would be measured on the training data."""
    from benchmark.overlap import eval_overlap, overlap_warning, per_subset

    out = {}
    for name, sub in eval_sets.items():
        folder = Path(cfg.eval_on).expanduser()
        info = eval_overlap(data, sub, folder if folder.is_dir() else None, cfg.data_dir)
        out[name] = info
        if info["n"] and info["exact_any"] == info["n"]:
            per = per_subset(info, "exact")  # parts that sum to the total
            raise InputError(
                f"--eval-on {cfg.eval_on}: all {info['n']} of its images are in the benchmarked data ({per}), so its "
                "accuracy would measure the training data, not another dataset. Give a folder of images that were "
                "not imported into this store (or leave out --eval-on)"
            )
        warning = overlap_warning(str(cfg.eval_on), info)
        if warning:
            log.info("%s", warning)
            emit(EvalOverlap(name, warning))
    return out


def load_data(cfg: BenchConfig, progress: Callable[[int, int], None] | None = None) -> Any:
    from benchmark.data import load_published, load_store_split

    if cfg.dataset:  # cfg.check() refused --split with --dataset
        return load_published(cfg.dataset)
    return load_store_split(cfg.data_dir, cfg.split, progress=progress)


# -- worker processes (jobs > 1), on lrfp.procpool.SpawnPool ------------------------------------


def _worker_init(bulk: tuple[Any, dict[str, Any]], threads: int | None) -> None:
    """A worker's start: `bulk` = (data, eval_sets), from SpawnPool's file (large: not through the spawn pipe)."""
    data, eval_sets = bulk
    import torch

    from benchmark.cpu_allocator import keep_freed_memory
    from lrfp.procpool import WORKER

    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    WORKER.update(data=data, eval_sets=eval_sets)


def _worker_run(run_cfg: Any, ckpt_dir: Path, context: dict[str, Any]) -> None:
    from benchmark.engine import run
    from lrfp.procpool import WORKER, report

    run(run_cfg, WORKER["data"], eval_sets=WORKER["eval_sets"], checkpoint_dir=ckpt_dir, context=context,
        on_epoch=lambda e: report(EpochDone(e)), on_row=lambda r: report(RowWritten(r)))


def run_bench(cfg: BenchConfig, on_event: OnEvent | None = None) -> BenchResult:
    """Train and evaluate the grid; rows, summary, plots and checkpoints go to cfg.out.

    Where cfg.out holds a benchmark of the same plan (the same command, its --model options in any order), only
    its unfinished runs are trained and its finished rows are kept (`benchmark.resume`; not with cfg.fresh); where
    every run there finished, nothing is trained and the report is written again. Otherwise the earlier results
    there move to previous-<time>/ (an unfinished benchmark of another plan is refused, see below).

    A KeyboardInterrupt (Ctrl-C; the CLI raises SIGTERM as one too) while runs are left writes results.md
    (marked INTERRUPTED) and the plots, then propagates; one that comes after every run has ended is not an
    interruption: the result is returned as usual.

    Each call that reaches training is a session of the benchmark in cfg.out: plan.json records it (its start,
    its runs, its training wall time, `resume.session_record`), and result.meta has `wall_seconds` (this
    session's) and `sessions` (all of them, this one last), from which the report gives the wall time over all
    sessions (`report.wall_time_words`); `command_seconds` is this call's whole time up to the report
    (`report.command_time_words`).

    Raises BenchUsageError (exit 2) for options that cannot work (`cfg.check()`, before anything is made) or an
    unfinished benchmark of other settings in --out, BenchError for what the machine or the data refuses (no
    CUDA, --out not writable or a file in it unreadable, a bad split, missing weights). A run that fails is a row
    with its `error` (see `BenchResult.failed`), not an exception.
    """
    started = time.perf_counter()  # the whole command's time (meta `command_seconds`), beside the training's
    cfg.check()
    emit: OnEvent = on_event or (lambda event: None)
    protocol = get_protocol(cfg.protocol)
    device = resolve_device(cfg.device)
    if cfg.cuda_graph and not device.startswith("cuda"):
        raise BenchUsageError(f"--cuda-graph needs a CUDA device, and --device {cfg.device} resolved to {device} "
                              "(CUDA graphs replay GPU kernels; leave --cuda-graph out on a CPU)")
    runs = plan_runs(cfg, protocol, device)
    created = not cfg.out.exists()
    check_out(cfg.out)
    try:
        with _out_lock(cfg.out):
            return _run_planned(cfg, protocol, device, runs, emit, started)
    except BaseException:
        if created:  # a check that failed before any output: leave no empty --out behind
            (cfg.out / _OUT_LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                cfg.out.rmdir()
        raise


_OUT_LOCK = ".bench.lock"


@contextlib.contextmanager
def _out_lock(out: Path) -> Iterator[None]:
    """Hold --out for this benchmark: a second `lrfp bench` into the same folder is refused (BenchError, exit 1)
    instead of training the same runs again beside it and interleaving their rows."""
    import fcntl

    path = out / _OUT_LOCK
    try:
        fh = open(path, "a+b")
    except OSError as e:
        raise BenchError(f"--out {out}: its lock file {path} cannot be opened ({e.strerror or e}); remove it (no "
                         "lrfp bench is running there) or give another --out") from e
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read(40).decode(errors="replace").strip() or "?"
            raise BenchError(f"another lrfp bench (process {pid}) is writing to --out {out}; wait for it to end, "
                             "or give another --out") from None
        except OSError as e:  # a file system without locks
            raise BenchError(f"--out {out}: its lock file {path} cannot be locked ({e.strerror or e}); give an --out "
                             "on a local disk") from e
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()).encode())
        fh.flush()
        yield
    finally:
        fh.close()


def _run_planned(cfg: BenchConfig, protocol: Protocol, device: str, runs: list[Any], emit: OnEvent,
                 started: float) -> BenchResult:
    """run_bench after its option checks, with --out held (see there); `started`: its time.perf_counter() at the
    start, for meta `command_seconds`."""
    import torch

    from benchmark import report, resume
    from benchmark.cpu_allocator import keep_freed_memory
    from benchmark.data import load_eval_set

    allocator = keep_freed_memory()  # before the data is decoded: every step's tensors reuse freed memory
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
        if cfg.threads > (cores := usable_cpus()):
            emit(Notice(f"--threads {cfg.threads} is more than the {cores} CPU core{'s' if cores != 1 else ''} this "
                        f"process may use: training is likely slower than with --threads {cores}"))
    jobs = cfg.jobs or (1 if cfg.stack_seeds else 3 if device.startswith("cuda") else 1)
    data = load_data(cfg, progress=lambda d, t: emit(DecodeProgress(d, t)))
    eval_sets = dict([load_eval_set(cfg.eval_on)]) if cfg.eval_on else {}
    eval_skipped = {name: [list(x) for x in sub.skipped] for name, sub in eval_sets.items() if sub.skipped}
    overlap = check_eval_overlap(cfg, data, eval_sets, emit)  # may refuse the set: then no results.md is written
    for name, skipped in eval_skipped.items():  # unreadable files are left out, as predict and import do
        emit(Notice(f"--eval-on {cfg.eval_on}: {len(skipped)} unreadable image{'s' if len(skipped) != 1 else ''} "
                    f"left out ({'; '.join(f'{f}: {why}' for f, why in skipped[:3])}{'; ...' if len(skipped) > 3 else ''}); "
                    f"the other {len(eval_sets[name])} are evaluated (results.md lists them all)"))
    all_runs = runs
    the_plan = resume.plan(runs, data, eval_sets, cfg.precision, cfg.stack_seeds, device)
    earlier, why_new = _earlier_benchmark(cfg, the_plan, emit)
    if earlier is not None:  # the same plan: train only what it did not finish (nothing where it finished)
        runs = [r for r in runs if r.run_name not in earlier.done]
    preflight_weights(runs)
    if resolve_precision(cfg.precision, device) is None:
        runs = choose_precision(runs, emit)
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True

    # the whole benchmark's precision: this session's runs and the earlier sessions' kept rows (a resume may train
    # only the fp32 configs of a benchmark that ran others in bf16)
    amp = sorted({r.amp for r in runs} | {row["amp"] == "bf16" for row in (earlier.rows if earlier else [])
                                          if row.get("amp") in ("bf16", "fp32")})
    context = {
        "split": data.audit.get("split", data.name), "data": data.name, "data_kind": data.kind,
        "split_leaked_groups": data.audit.get("leaked_groups"),
        "split_near_duplicate_pairs": data.audit.get("split_near_duplicate_pairs"), "device": device, "device_name": device_name(device),
        "torch_version": torch.__version__, "threads": torch.get_num_threads(), "jobs": jobs,
        "cpu_allocator": allocator,
        "precision": ("bf16 autocast + channels-last" if amp == [True] else "fp32 (channels-last for Models 1-3 on CPU)"
                      if amp == [False] and device == "cpu" else "fp32" if amp == [False] else
                      "per config, by a timed probe (see the amp column)"),
    }
    meta = {
        **context, "protocol": protocol.name, "protocol_summary": protocol.summary, "counts": data.counts(),
        "audit": {k: v for k, v in data.audit.items() if k != "split_report"},
        "eval_overlap": overlap,  # eval set name -> {n, exact, near, ...} (benchmark.overlap)
        "eval_skipped": eval_skipped,  # eval set name -> [[file, why], ...]: unreadable images left out
        # the transfer models that actually ran with ImageNet weights (Models 1-3 have none to load)
        "pretrained": sorted({r.model for r in all_runs if r.pretrained}),
        "from_scratch": sorted({r.model for r in all_runs if not r.pretrained and get_spec(r.model).pretrained}),
        # what this benchmark ran (options may override the protocol's epochs and seeds)
        "run_epochs": max((r.epochs for r in all_runs), default=None),
        "run_budgets": sorted({e for r in all_runs for e in r.eval_epochs}),
        "run_seeds": len({r.seed for r in all_runs}),
    }
    if earlier is None:
        archived = report.archive_previous(cfg.out)
        if archived:
            log.info("moved the previous results in %s to %s%s", cfg.out, archived, f" ({why_new})" if why_new else "")
            meta["previous_results"] = str(archived)
            if why_new:
                meta["previous_reason"] = why_new
            emit(PreviousMoved(str(archived), why_new))
        resume.write_plan(cfg.out, the_plan)
        writer = report.ResultsWriter(cfg.out, configs=[r.config_name for r in all_runs])  # tables in plan order
    else:
        meta["resumed_runs"] = sorted(earlier.done)
        meta["trained_runs"] = len(runs)
        writer = report.ResultsWriter(cfg.out, earlier.rows, earlier.history, configs=[r.config_name for r in all_runs])
    # this session, recorded in plan.json before training (its wall time at the end): the report states the
    # benchmark's wall time over all its sessions
    sessions = resume.session_record(earlier) + [{
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "runs": len(runs),
        "ended_runs": 0, "wall_seconds": None}]
    on_disk = the_plan if earlier is None else earlier.plan
    resume.write_plan(cfg.out, on_disk, sessions)
    ckpt_dir = cfg.out / "checkpoints"
    total_epochs = sum(r.epochs for r in runs)
    if runs:
        emit(GridPlanned([r.run_name for r in runs], total_epochs, device, context["device_name"], jobs, meta["counts"]))

    def on_row(row: dict[str, Any]) -> None:
        writer.add_row(row)
        emit(RowWritten(row))

    def on_epoch(entry: dict[str, Any]) -> None:
        writer.add_epoch(entry)
        emit(EpochDone(entry))

    t0 = time.perf_counter()
    try:
        if not runs:
            pass  # every run was finished by an earlier session (GridFinished): only the report is written again
        elif jobs == 1 and cfg.stack_seeds:
            _run_stacked_groups(runs, data, eval_sets, ckpt_dir, context, on_row, on_epoch, emit)
        elif jobs == 1:
            for run_cfg in runs:
                _run_one(run_cfg, data, eval_sets, ckpt_dir, context, on_row, on_epoch, emit)
        else:
            _run_parallel(runs, data, eval_sets, ckpt_dir, context, jobs, cfg.threads, on_row, on_epoch, emit)
    except BaseException as e:
        # Ctrl-C, or SIGTERM where the caller (the CLI) raises it as one; or an error while stopping for one (a
        # worker or the pool's manager process killed with the process group), which is the same stop
        stop = _interrupt_of(e)
        if stop is None or resume.runs_left(the_plan, writer.rows):
            if stop is not None and stop is not e:
                log.info("while stopping: %s: %s", type(e).__name__, e)
                raise stop from None
            raise
        # a stop that came after the last run had ended interrupted nothing: the benchmark ends as a finished one
        log.info("stopped after every run had ended: a finished benchmark")
    finally:
        meta["wall_seconds"] = round(time.perf_counter() - t0, 3)
        meta["command_seconds"] = round(time.perf_counter() - started, 3)  # + reading, decoding, checks, the probe
        left = set(resume.runs_left(the_plan, writer.rows))
        # INTERRUPTED where runs are left, whatever stopped them (Ctrl-C, SIGTERM, an error that ended the grid)
        meta["interrupted"] = bool(left)
        sessions[-1].update(wall_seconds=meta["wall_seconds"],
                            ended_runs=sum(r.run_name not in left for r in runs))
        meta["sessions"] = sessions
        # a second Ctrl-C (or SIGTERM) while the summary is written waits the second or two it takes, and is
        # dropped where every run has ended (it has nothing left to stop)
        with _deferred_signals(lambda: bool(resume.runs_left(the_plan, writer.rows))):
            try:
                resume.write_plan(cfg.out, on_disk, sessions)
            except BenchError as e:  # (not raised here: it would hide what ended the grid; the report has it)
                log.warning("%s: this session's wall time is not recorded in plan.json", e)
            files = [report.write_markdown(cfg.out, writer.rows, meta)]
            if writer.rows or writer.history:
                try:
                    files += report.write_plots(cfg.out, writer.rows, writer.history)
                except Exception:  # a plot must never cost the rows
                    log.exception("plotting failed")
    return BenchResult(out=cfg.out, rows=writer.rows, summary=report.summarize(writer.rows), files=files, meta=meta)


def _interrupt_of(error: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt `error` is, or was raised while handling (its __context__ chain), else None."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__context__
    return None


def _earlier_benchmark(cfg: BenchConfig, the_plan: dict[str, Any], emit: OnEvent) -> tuple[Any, str]:
    """What --out holds, decided against this benchmark's plan: (the earlier benchmark to resume, or None for a
    new one; why a new one where the user would not expect it, else "").

    Resumed: the same plan (its runs in any order), not --fresh, some run not finished (GridResumed) or every
    one (GridFinished: nothing is trained); or, finished or not, a plan this one only adds runs to
    (`resume.added_runs`: a Notice names them, this plan replaces plan.json, only runs not finished train).
    New: --fresh, no plan.json, a finished benchmark of another plan (what differs returned), or a plan.json
    that cannot be read (the reason returned). Refused (BenchUsageError, exit 2): an unfinished benchmark of
    another plan, naming what differs; where its data changed on disk (`resume.data_differences`) the way on
    is --fresh or another --out, not its own command. A kept run without history entries is a Notice.
    BenchError: a file there that cannot be read at all (`resume.read_earlier`).
    """
    from benchmark import resume
    from benchmark.report import HISTORY_JSONL, RESULTS_JSONL, RESULTS_MD

    if cfg.fresh:
        return None, ""
    try:
        earlier = resume.read_earlier(cfg.out)
    except resume.UnreadablePlan as e:
        return None, f"{cfg.out / resume.PLAN_JSON} cannot be read ({e}), so the benchmark there cannot be resumed"
    if earlier is None:
        held = (cfg.out / RESULTS_JSONL).exists()
        return None, (f"{cfg.out} holds results but no {resume.PLAN_JSON} (an older lrfp's, or removed), so they "
                      "cannot be resumed" if held else "")
    if not resume.same_plan(earlier.plan, the_plan):
        added = resume.added_runs(earlier.plan, the_plan)
        if added:  # the earlier plan plus more runs, all else identical: its finished runs are runs of this plan
            # before any run: an interruption now resumes this plan
            resume.write_plan(cfg.out, the_plan, resume.session_record(earlier))
            emit(Notice(f"this command adds {len(added)} run{'s' if len(added) != 1 else ''} ({', '.join(added)}) to "
                        f"the benchmark in this --out, with the same data, eval sets and options: its "
                        f"{len(earlier.done)} finished run{'s are' if len(earlier.done) != 1 else ' is'} kept and only "
                        "the others are trained (--fresh trains them all)"))
            earlier.plan, earlier.needed = the_plan, resume.planned_runs(the_plan)
        elif earlier.finished:
            return None, ("the finished benchmark there is of other settings "
                          f"({'; '.join(resume.differences(earlier.plan, the_plan))})")
        else:
            changed = resume.differences(earlier.plan, the_plan)
            state = f"{len(earlier.done)} of its {len(earlier.needed)} runs are finished"
            if resume.made_by_an_older_lrfp(earlier.plan, the_plan):  # this lrfp cannot train its runs any more
                raise BenchUsageError(
                    f"--out {cfg.out} holds an unfinished benchmark of other settings ({'; '.join(changed)}): {state}, "
                    "but an older lrfp made it with settings this one no longer has, so rerunning its command cannot "
                    "finish it. Add --fresh to start this one there (the earlier results move to previous-<time>/), "
                    "or give another --out")
            if resume.data_differences(earlier.plan, the_plan):  # on disk: its own command cannot bring it back
                raise BenchUsageError(
                    f"--out {cfg.out} holds an unfinished benchmark of other settings ({'; '.join(changed)}): {state}, "
                    "but the data it trained on is no longer there, so rerunning its own command cannot finish it. "
                    "Add --fresh to start this one there (the earlier results move to previous-<time>/), or give "
                    "another --out")
            raise BenchUsageError(
                f"--out {cfg.out} holds an unfinished benchmark of other settings ({'; '.join(changed)}): {state}. "
                "Rerun its own command to finish it, add --fresh to start this one there (the earlier results move "
                "to previous-<time>/), or give another --out")
    if earlier.no_history:  # a removed history.jsonl: the rows are enough to resume, but say what is lost
        n = len(earlier.no_history)
        runs = f"{'the kept run' if n == 1 else f'the {n} kept runs'} ({', '.join(earlier.no_history)})"
        where = (f"{cfg.out / HISTORY_JSONL} is missing, so {runs}" if earlier.history_missing
                 else f"{cfg.out / HISTORY_JSONL} has no epochs of {runs}, so {'it' if n == 1 else 'they'}")
        emit(Notice(f"{where} {'has' if n == 1 else 'have'} no learning curve{'' if n == 1 else 's'} "
                    f"({'its' if n == 1 else 'their'} rows are kept; --fresh trains every run again, with curves)"))
    for name, n in earlier.bad_lines.items():
        what = (("its run is" if n == 1 else "their runs are") + " trained again" if name == RESULTS_JSONL
                else "the learning curves lack " + ("it" if n == 1 else "them"))
        emit(Notice(f"{n} line{'s' if n != 1 else ''} of {name} in --out {'are' if n != 1 else 'is'} not a JSON "
                    f"object (cut short by a crash?) and left out: {what}"))
    if earlier.finished:
        emit(GridFinished(len(earlier.needed), str(cfg.out / RESULTS_MD)))
    else:
        emit(GridResumed(sorted(earlier.done), len(earlier.needed)))
    return earlier, ""


@contextlib.contextmanager
def _deferred_signals(deliver: Callable[[], bool]) -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block (main thread only); after it, deliver the first that came in to
    its earlier handler if `deliver()` says so (a Python handler is called; the default action, for a SIGTERM
    with no handler, is taken by raising the signal again), else drop it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be set back
                signal.signal(sig, handler)
    if not caught or not deliver():
        return
    handler = previous[caught[0]]
    if callable(handler):
        handler(caught[0], None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(caught[0])


def _guarded(group: list[Any], context, on_row, emit, what: str, train: Callable[[], None]) -> None:
    """train() for the runs of `group` (one run, or a config's stacked seeds) in this process, between their
    RunStarted and RunEnded events. A failure is an error row for each run of the group, not the end of the
    grid (Ctrl-C and BenchError still end it); `what` names it in the log. The run's rows of earlier budgets go
    (`report.ResultsWriter.add_row`), and its last budget's rows were never written (they wait for its
    checkpoint, `engine._RunBook.finish`): a run is a result or a failure, not both."""
    from benchmark.engine import error_row

    for run_cfg in group:
        emit(RunStarted(run_cfg.run_name))
    try:
        train()
    except (KeyboardInterrupt, BenchError):
        raise
    except Exception as e:  # stacked seeds fail together: one error row each
        if disk_full(e):  # not this run's fault: every next run would fail the same way (the CLI says so)
            raise
        log.warning("%s failed: %s: %s", what, type(e).__name__, e)
        log.debug("%s failed", what, exc_info=True)
        for run_cfg in group:
            on_row(error_row(run_cfg, context, e))
    for run_cfg in group:
        emit(RunEnded(run_cfg.run_name))


def _run_one(run_cfg, data, eval_sets, ckpt_dir, context, on_row, on_epoch, emit) -> None:
    """One run in this process (see `_guarded` for a run that fails)."""
    from benchmark.engine import run

    _guarded([run_cfg], context, on_row, emit, f"run {run_cfg.run_name}",
             lambda: run(run_cfg, data, eval_sets=eval_sets, checkpoint_dir=ckpt_dir, context=context,
                         on_epoch=on_epoch, on_row=on_row))


def _run_stacked_groups(runs, data, eval_sets, ckpt_dir, context, on_row, on_epoch, emit) -> None:
    """--stack-seeds: each config's seeds as one stacked model where that is exact (no Dropout; not CPU bf16,
    whose per-step NaN guard is per model), the other configs one run at a time as usual."""
    from benchmark.engine import run_stacked
    from benchmark.registry import create_model
    from benchmark.stacked import stackable

    groups: dict[str, list[Any]] = {}
    for r in runs:
        groups.setdefault(r.config_name, []).append(r)
    for group in groups.values():
        r0 = group[0]
        cpu_bf16 = r0.amp and r0.device == "cpu"
        dropout = not stackable(create_model(r0.model, norm=r0.norm, input_size=r0.input_size))
        exact = len(group) > 1 and not cpu_bf16 and not dropout
        if len(group) > 1 and not exact:
            why = ("its Dropout masks would differ from separate runs" if dropout else
                   "bf16 on a CPU checks each model's gradients for oneDNN's NaN bug, one model at a time")
            emit(Notice(f"--stack-seeds: {r0.config_name} trains its {len(group)} seeds one at a time ({why})"))
        if not exact:
            for run_cfg in group:
                _run_one(run_cfg, data, eval_sets, ckpt_dir, context, on_row, on_epoch, emit)
            continue
        _guarded(group, context, on_row, emit, f"stacked runs of {r0.config_name}",
                 lambda: run_stacked(group, data, eval_sets=eval_sets, checkpoint_dir=ckpt_dir, context=context,
                                     on_epoch=on_epoch, on_row=on_row))


class WorkerProcessDied(Exception):
    """The worker process running a run died (its error row's type)."""


def _run_parallel(runs, data, eval_sets, ckpt_dir, context, jobs, threads, on_row, on_epoch, emit) -> None:
    """Several runs at once, each in a worker process; their rows and epochs come back as they happen.

    A worker process that dies (the OOM killer, a crash in a native library, a kill) costs the run it was running:
    an error row says how it died. The pool stops its other workers then; their runs start again in a new pool
    (the epochs and rows they already sent are kept and not written twice: the same seed gives the same numbers
    on a CPU, and up to cuDNN's nondeterminism on a GPU), and so do the runs not started yet. The pool's Manager process dying ends the benchmark with a BenchError; the
    rows that arrived are kept. On Ctrl-C or an error the rows that already arrived are kept, then the workers
    are stopped at once.
    """
    written: set[tuple[Any, ...]] = set()

    def handle(event: Any) -> None:
        if isinstance(event, RowWritten):
            r = event.row
            key: tuple[Any, ...] = ("row", r.get("config"), r.get("seed"), r.get("epochs"), r.get("eval_set"))
        else:
            key = ("epoch", event.entry.get("run"), event.entry.get("epoch"))
        if key in written:  # a run that started again after its pool broke
            return
        written.add(key)
        if isinstance(event, RowWritten):
            on_row(event.row)
        else:
            on_epoch(event.entry)

    per_job = max(1, (threads or os.cpu_count() or 1) // jobs) if not runs[0].device.startswith("cuda") else 1
    left, fruitless = list(runs), 0
    while left:
        before = len(left)
        left = _run_pool(left, data, eval_sets, ckpt_dir, context, jobs, per_job, handle, on_row, emit,
                         last_chance=fruitless >= 2)
        fruitless = fruitless + 1 if len(left) == before else 0


def _run_pool(runs, data, eval_sets, ckpt_dir, context, jobs, per_job, handle, on_row, emit, last_chance) -> list[Any]:
    """One SpawnPool over `runs` (see `_run_parallel`); returns the runs to start again in a new pool."""
    from concurrent.futures.process import BrokenProcessPool

    from benchmark.engine import error_row
    from lrfp.errors import WorkerPoolError
    from lrfp.procpool import SpawnPool

    broken: list[Any] = []
    try:
        # a manager queue: a report is in it before its run's future completes, so the last drain misses none
        with SpawnPool(jobs, _worker_init, (per_job,), bulk=(data, eval_sets), manager_queue=True) as pool:
            try:
                pending = {pool.submit_keyed(r.run_name, _worker_run, r, ckpt_dir, context): r for r in runs}
                while pending:
                    for fut in pool.wait_any(pending, handle, timeout=0.2):
                        run_cfg = pending.pop(fut)
                        err = fut.exception()
                        if isinstance(err, BrokenProcessPool):  # a worker process died: sorted out below
                            broken.append(run_cfg)
                            continue
                        if isinstance(err, BenchError) or (err is not None and disk_full(err)):
                            raise err
                        if err is not None:
                            pool.drain(handle)  # (raises if the run failed because the Manager process died)
                            on_row(error_row(run_cfg, context, err))
                        emit(RunEnded(run_cfg.run_name))
            except BaseException:
                with contextlib.suppress(WorkerPoolError):  # (the error in flight says more)
                    pool.drain(handle)  # keep what already arrived, also on Ctrl-C
                raise
            pool.drain(handle)
    except WorkerPoolError as e:
        raise BenchError(f"{e}. The rows that arrived are kept; rerun the same command to train the runs "
                         "not finished") from e
    if not broken:
        return []
    deaths = pool.deaths()
    lost = [r for r in broken if pool.started.get(r.run_name) in deaths]
    how = "; ".join(sorted(set(deaths.values()))) or "stopped by signal 15 (SIGTERM)"
    if not lost and last_chance:  # worker processes keep dying, and none of them while running a run
        began = [r for r in broken if r.run_name in pool.started]
        if not began:
            raise BenchError(f"the worker processes keep dying before their runs begin ({how}); run with --jobs 1 "
                             "to see the error, or with fewer --jobs if memory is short")
        lost = began
    for run_cfg in lost:
        pid = pool.started[run_cfg.run_name]
        why = deaths.get(pid, "it was stopped by signal 15 (SIGTERM)")
        log.warning("run %s failed: its worker process %s died (%s)", run_cfg.run_name, pid, why)
        on_row(error_row(run_cfg, context, WorkerProcessDied(f"the worker process running it died ({why})")))
        emit(RunEnded(run_cfg.run_name))
    again = [r for r in runs if r in broken and r not in lost]  # (in the plan's order)
    if again:
        emit(Notice(f"a worker process died ({how}); {len(again)} run(s) that the pool stopped with it, or that "
                    "had not begun, start again in new worker processes"))
    return again
