"""`lrfp bench --jobs N`: a worker process that dies costs only the run it was running; the Manager process
dying is a clear error that keeps the rows that arrived (benchmark.harness._run_parallel, lrfp.procpool)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from bench_helpers import split_store
from benchmark.report import read_jsonl


@pytest.fixture(scope="module")
def bench_store(smfd_dir, tmp_path_factory) -> Path:
    """~270 real SMFD crops (100 whole groups) downscaled to 32 px, with a seeded grouped split."""
    return split_store(tmp_path_factory.mktemp("bench"), smfd_dir, n_groups=100, max_side=32)


def _register_dying_model() -> None:
    """Register model "dies": in a worker process its first forward kills the process with SIGKILL, what the
    OOM killer does (in the test's own process it is only registered, for the harness's checks)."""
    import torch

    from benchmark import registry

    class Dies(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            if multiprocessing.parent_process() is not None:
                os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("the model 'dies' only runs in worker processes")

    if "dies" not in registry.list_models():
        registry.register_model("dies", input_size=16, quick_input_size=16, min_input_size=1)(lambda **kw: Dies())


class _RegistersInTheWorker:
    """Unpickling it (with the data each worker process gets) registers "dies" there too."""

    def __reduce__(self):
        return _registered, ()


def _registered() -> None:
    _register_dying_model()


@pytest.fixture
def dying_model(monkeypatch):
    from benchmark import harness, registry

    real = harness.load_data

    def load_data(cfg, progress=None):
        data = real(cfg, progress)
        data.registers_in_the_worker = _RegistersInTheWorker()  # travels to the workers with the data
        return data

    monkeypatch.setattr(harness, "load_data", load_data)
    _register_dying_model()
    yield
    registry._REGISTRY.pop("dies")


@pytest.mark.slow  # two pools of two spawned workers: ~20 s on 2 busy cores
def test_a_worker_that_dies_costs_only_its_run_and_the_grid_goes_on(bench_store, tmp_path, dying_model):
    from benchmark.events import Notice
    from benchmark.harness import BenchConfig, run_bench

    events = []
    out = tmp_path / "o"
    run_bench(BenchConfig(data_dir=bench_store, out=out, models=("dies", "model3"), protocol="quick", epochs=2,
                          input_size=32, seeds=1, jobs=2, threads=2, device="cpu", precision="fp32"), on_event=events.append)
    rows = read_jsonl(out / "results.jsonl")
    assert sorted((r["config"], r["epochs"], bool(r["error"])) for r in rows) == [("dies", 2, True), ("model3", 2, False)]
    err = next(r["error"] for r in rows if r["error"])
    assert err == ("WorkerProcessDied: the worker process running it died (killed by signal 9 (SIGKILL): out of "
                   "memory (the kernel's OOM killer), or a kill -9?)")
    assert [(h["run"], h["epoch"]) for h in read_jsonl(out / "history.jsonl")] == [("model3-s0", 1), ("model3-s0", 2)]
    md = (out / "results.md").read_text()
    assert "- dies seed 0: WorkerProcessDied: the worker process running it died (killed by signal 9" in md
    # (a machine with fewer cores than --threads adds a Notice of its own: only those about workers are checked)
    deaths = [e.text for e in events if isinstance(e, Notice) and "worker process" in e.text]
    assert deaths and all(n.startswith("a worker process died (killed by signal 9") for n in deaths)


@pytest.mark.slow  # ~13 s on 2 busy cores
def test_the_manager_process_dying_is_a_clear_error_that_keeps_the_rows(bench_store, tmp_path):
    from benchmark.events import RowWritten
    from benchmark.harness import BenchConfig, run_bench
    from lrfp.errors import BenchError

    def on_event(event):
        if isinstance(event, RowWritten):  # the first row arrived: kill the Manager process carrying the reports
            manager = [p for p in multiprocessing.active_children() if "Manager" in p.name]
            assert len(manager) == 1, multiprocessing.active_children()
            os.kill(manager[0].pid, signal.SIGKILL)

    out = tmp_path / "o"
    with pytest.raises(BenchError) as e:
        run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3",), protocol="quick", epochs=5,
                              seeds=1, jobs=2, threads=2, device="cpu", precision="fp32", input_size=32), on_event=on_event)
    assert str(e.value).startswith("the Manager process that carries the worker processes' reports died (killed by "
                                   "signal 9 (SIGKILL)")
    assert str(e.value).endswith("The rows that arrived are kept; rerun the same command to train the runs not finished")
    rows = read_jsonl(out / "results.jsonl")
    assert rows and not any(r["error"] for r in rows)
    assert (out / "results.md").exists()  # the summary of what arrived


def _die_unless_in(pid: int) -> None:
    if os.getpid() != pid:  # (a worker, while it is unpickling its start-up arguments)
        os.kill(os.getpid(), signal.SIGKILL)


class _KillsTheWorker:
    """Unpickling it (with the data each worker process gets) kills that worker before any run begins."""

    def __reduce__(self):
        return _die_unless_in, (os.getpid(),)


def test_workers_that_keep_dying_before_any_run_begins_end_the_bench_instead_of_looping(bench_store, tmp_path,
                                                                                        monkeypatch):
    from benchmark import harness
    from benchmark.harness import BenchConfig, run_bench
    from lrfp.errors import BenchError

    real = harness.load_data

    def load_data(cfg, progress=None):
        data = real(cfg, progress)
        data.kills_the_worker = _KillsTheWorker()
        return data

    monkeypatch.setattr(harness, "load_data", load_data)
    out = tmp_path / "o"
    with pytest.raises(BenchError) as e:
        run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3",), protocol="quick", epochs=2,
                              input_size=32, seeds=2, jobs=2, threads=2, device="cpu", precision="fp32"))
    assert str(e.value).startswith("the worker processes keep dying before their runs begin (killed by signal 9 "
                                   "(SIGKILL)")
    assert "run with --jobs 1 to see the error, or with fewer --jobs if memory is short" in str(e.value)
    assert read_jsonl(out / "results.jsonl") == []  # no run is marked failed: none began


_DIES_AS_IT_STARTS = """
import os, sys
if "--multiprocessing-fork" in sys.argv:  # a spawned child of lrfp: the Manager first, then the workers
    n = 1
    while True:
        try:
            os.close(os.open(os.path.join(os.environ["SLOTS"], str(n)), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            n += 1
    if n == 2:  # the first worker dies before it reads its start data: what the OOM killer does to a worker
        os._exit(9)
"""


def test_a_worker_that_dies_as_it_starts_does_not_hang_the_benchmark(bench_store, tmp_path):
    """Tester's bug J: the parent blocked forever writing a worker's start data (the decoded images, far more than
    a pipe holds) to a worker already dead (CPython's spawn keeps the pipe's read end open until the write ends).
    The data now goes through a file: the pool sees the death, and the runs train in a new pool."""
    import subprocess
    import sys

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_DIES_AS_IT_STARTS)
    (tmp_path / "slots").mkdir()
    env = {**os.environ, "SLOTS": str(tmp_path / "slots"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "o"
    proc = subprocess.run(
        [sys.executable, "-m", "lrfp", "bench", "-d", str(bench_store), "--model", "model3", "--protocol", "quick",
         "--epochs", "1", "--seeds", "2", "--input-size", "16", "--device", "cpu", "--precision", "fp32",
         "--jobs", "2", "--out", str(out)], env=env, capture_output=True, text=True, timeout=180)
    assert (tmp_path / "slots" / "2").exists()  # the worker did die as it started
    assert proc.returncode == 0, proc.stderr
    assert "it exited with status 9" in " ".join(proc.stderr.split())
    rows = [r for r in read_jsonl(out / "results.jsonl") if not r.get("error")]
    assert sorted({r["seed"] for r in rows}) == [0, 1]
