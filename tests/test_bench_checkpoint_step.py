"""A run is finished only when its checkpoint step is done (bug A of /work/bench-bugs2.md), and a checkpoint or
results file that cannot be written is one clear failure, not a result and a failure at once (bug C)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench_helpers import split_store, tiny_bench_config


@pytest.fixture(scope="module")
def store(smfd_dir, tmp_path_factory) -> Path:
    return split_store(tmp_path_factory.mktemp("ckstep"), smfd_dir, n_groups=50, max_side=16, split="g")


_cfg = tiny_bench_config


def _rows(out: Path) -> list[dict]:
    from benchmark.report import read_jsonl

    return read_jsonl(out / "results.jsonl")


def test_ctrl_c_while_the_checkpoint_is_saved_leaves_no_row_and_the_rerun_trains_it(store, tmp_path, monkeypatch):
    from benchmark import engine
    from benchmark.harness import run_bench

    out = tmp_path / "o"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of torch.save

    with monkeypatch.context() as m:
        m.setattr(engine, "save_best_checkpoint", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_bench(_cfg(store, out, seeds=2))
    assert _rows(out) == []  # the run is not finished: no row says it is
    stale = out / "checkpoints" / "model3.pt.99999.tmp"  # what a kill -9 in the middle of a save leaves
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint")
    result = run_bench(_cfg(store, out, seeds=2))
    assert not result.failed and {r["seed"] for r in _rows(out)} == {0, 1}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [".lock", "model3.json", "model3.pt"]


def test_ctrl_c_while_the_second_seeds_checkpoint_is_saved_keeps_the_first_run_whole(store, tmp_path, monkeypatch):
    from benchmark import engine
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    real, calls = engine.save_best_checkpoint, []

    def second_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(engine, "save_best_checkpoint", second_interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_bench(_cfg(store, out, seeds=2, stack_seeds=True))  # both seeds' rows come from one stacked run
    assert {r["seed"] for r in _rows(out)} == {0} and (out / "checkpoints" / "model3.pt").is_file()
    result = run_bench(_cfg(store, out, seeds=2, stack_seeds=True))
    assert result.meta["resumed_runs"] == ["model3-s0"] and result.meta["trained_runs"] == 1
    assert not result.failed and sorted(r["seed"] for r in _rows(out)) == [0, 1]  # (one budget: one row per seed)


def test_a_checkpoint_that_cannot_be_written_is_one_failed_run_not_a_result_too(store, tmp_path, monkeypatch):
    """Bug C: the run's rows of an earlier budget go, one error row names the file and the OS error."""
    from benchmark import engine
    from benchmark.harness import run_bench

    out = tmp_path / "o"

    def denied(path, state, meta):  # what a read-only checkpoints/ gives (the real one: the setpriv test below)
        raise PermissionError(13, "Permission denied", f"{path}.{os.getpid()}.tmp")  # (this save's own)

    with monkeypatch.context() as m:
        m.setattr(engine, "_save_best_checkpoint", denied)
        result = run_bench(_cfg(store, out, epochs=4))  # budgets 3 and 4: the budget-3 row was written first
    rows = _rows(out)
    assert rows == result.rows and len(rows) == 1 and rows[0]["seed"] == 0
    assert rows[0]["error"] == f"CheckpointError: cannot write the checkpoint {out}/checkpoints/model3.pt: Permission denied"
    result = run_bench(_cfg(store, out, epochs=4))  # the failed run is trained again
    assert not result.failed and sorted(r["epochs"] for r in _rows(out)) == [3, 4]
    assert (out / "checkpoints" / "model3.pt").is_file()


# -- permissions: the machine runs these tests as root, which ignores file modes; setpriv drops root's
# override (CAP_DAC_OVERRIDE...) for the child process. Skipped as root where setpriv is missing.

def _unprivileged() -> list[str]:
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("runs as root and setpriv is missing: file modes cannot be made to bite")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def _bench(store: Path, out: Path, *extra: str):
    import subprocess
    import sys

    return subprocess.run([*_unprivileged(), sys.executable, "-m", "lrfp", "bench", "-d", str(store), "--split", "g",
                           "--model", "model3", "--protocol", "quick", "--epochs", "2", "--input-size", "16",
                           "--device", "cpu", "--precision", "fp32", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300)


def test_a_read_only_checkpoints_folder_is_refused_before_training(store, tmp_path):
    out = tmp_path / "o"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints").chmod(0o555)
    proc = _bench(store, out)
    assert proc.returncode == 1, proc.stderr
    assert f"Error: --out {out}: {out}/checkpoints is not writable (Permission denied)" in proc.stderr
    assert not (out / "results.jsonl").exists() and "epoch" not in proc.stdout.lower()


def test_a_read_only_results_md_is_refused_by_name(store, tmp_path):
    out = tmp_path / "o"
    assert _bench(store, out).returncode == 0
    (out / "results.md").chmod(0o444)
    proc = _bench(store, out)
    assert proc.returncode == 1 and f"{out}/results.md is not writable (Permission denied)" in proc.stderr, proc.stderr
    assert "unexpected" not in proc.stderr


def test_archive_previous_with_a_read_only_checkpoints_folder_moves_nothing(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "o"
    (out / "checkpoints").mkdir(parents=True)
    (out / "results.jsonl").write_text("{}\n")
    (out / "checkpoints").chmod(0o555)
    code = ("import sys; from pathlib import Path; from benchmark.report import archive_previous\n"
            "try: archive_previous(Path(sys.argv[1]))\nexcept Exception as e: print(type(e).__name__, e)")
    proc = subprocess.run([*_unprivileged(), sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert proc.stdout.startswith(f"BenchError cannot move the earlier results in --out {out} to previous-"), proc
    assert f"({out}/checkpoints: Permission denied)" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "results.jsonl"]  # nothing moved, no empty folder


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: spawned workers, ~14 s
def test_a_real_checkpoint_write_failure_is_one_error_row_in_this_process_and_in_a_worker(store, tmp_path, capsys, jobs):
    """A folder where model1-bn's checkpoint must be renamed into place: `check_out` does not look at a config's
    .pt (only checkpoints/ and its lock), so the save fails for real, in this process (--jobs 1) or in a spawned
    worker process (--jobs 2: a monkeypatch would not reach it). Either way: that run is one error row, the
    other configs finish, the report and the terminal list the failure, exit 1."""
    from bench_helpers import cli_run
    from benchmark.events import RunStarted
    from benchmark.harness import run_bench

    out = tmp_path / "o"

    def stop(event):  # a first session stopped before its first run: its plan stays, so the second one resumes
        if isinstance(event, RunStarted):  # (a new benchmark would move checkpoints/ to previous-<time>/)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, models=("model1",), epochs=1), on_event=stop)
    (out / "checkpoints" / "model1-bn.pt").mkdir(parents=True)
    code, stdout, err = cli_run(capsys, "bench", "-d", str(store), "--split", "g", "--model", "model1", "--protocol",
                                "quick", "--epochs", "1", "--input-size", "16", "--device", "cpu", "--precision", "fp32",
                                "--jobs", str(jobs), "--threads", "2", "--out", str(out))
    message = f"CheckpointError: cannot write the checkpoint {out}/checkpoints/model1-bn.pt: Is a directory"
    rows = _rows(out)
    assert sorted((r["config"], r["seed"], r["error"]) for r in rows) == [
        ("model1-bcn", 0, ""), ("model1-bcn_ws", 0, ""), ("model1-bn", 0, message)]
    assert code == 1 and err == ("Error: 1 of 3 result rows are failed runs (see the table and "
                                 f"{out}/results.md)")
    assert f"  model1-bn seed 0: {message}" in stdout.splitlines()
    md = (out / "results.md").read_text()
    assert f"## Runs that failed\n\n- model1-bn seed 0: {message}" in md
    assert [line.split(" | ")[:2] for line in md.splitlines() if line.startswith("| model1 |")] == [
        ["| model1", "BatchGroup (BCN)"], ["| model1", "BatchGroup + WS"]]  # the two finished configs' rows
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == [".lock", "model1-bcn.json", "model1-bcn.pt", "model1-bcn_ws.json", "model1-bcn_ws.pt", "model1-bn.pt"]
    assert list((out / "checkpoints" / "model1-bn.pt").iterdir()) == []  # the folder is left as it was
