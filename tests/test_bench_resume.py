"""Rerunning an interrupted `lrfp bench` into the same --out trains only what it did not finish (benchmark/resume.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_helpers import grouped_split, split_store, tiny_bench_config


@pytest.fixture(scope="module")
def store(smfd_dir, tmp_path_factory) -> Path:
    return split_store(tmp_path_factory.mktemp("resume"), smfd_dir, n_groups=50, max_side=16, split="g")


def _cfg(store: Path, out: Path, **kw):
    return tiny_bench_config(store, out, **{"seeds": 3, **kw})


def _interrupt_when(run_name: str):
    """An on_event that presses Ctrl-C when `run_name` starts; it records the runs that started."""
    from benchmark.events import RunStarted

    started: list[str] = []

    def on_event(event):
        if isinstance(event, RunStarted):
            started.append(event.run)
            if event.run == run_name:
                raise KeyboardInterrupt

    return on_event, started


def _recorder():
    from benchmark.events import GridResumed, RunStarted

    seen: dict[str, list] = {"started": [], "resumed": []}

    def on_event(event):
        if isinstance(event, RunStarted):
            seen["started"].append(event.run)
        elif isinstance(event, GridResumed):
            seen["resumed"].append(event)

    return on_event, seen


def _sessions(out: Path) -> list[dict]:
    """plan.json's record of the benchmark's sessions."""
    return json.loads((out / "plan.json").read_text())["sessions"]


def _set_wall_seconds(out: Path, i: int, seconds: float) -> None:
    plan = json.loads((out / "plan.json").read_text())
    plan["sessions"][i]["wall_seconds"] = seconds
    (out / "plan.json").write_text(json.dumps(plan))


def test_a_rerun_after_ctrl_c_trains_only_the_unfinished_runs(store, tmp_path):
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    on_event, started = _interrupt_when("model3-s2")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out), on_event=on_event)
    assert started == ["model3-s0", "model3-s1", "model3-s2"]
    before = read_jsonl(out / "results.jsonl")
    assert sorted({r["seed"] for r in before}) == [0, 1]
    (first,) = _sessions(out)  # the interrupted session's wall time is recorded too
    assert (first["runs"], first["ended_runs"]) == (3, 2) and first["wall_seconds"] > 0
    assert f"- wall time: {first['wall_seconds']:.0f} s, one session; INTERRUPTED" in (out / "results.md").read_text()
    _set_wall_seconds(out, 0, 400.0)  # as if it had taken 400 s (the test must not depend on the clock)

    on_event, seen = _recorder()
    result = run_bench(_cfg(store, out), on_event=on_event)
    assert seen["started"] == ["model3-s2"]  # s0 and s1 were not trained again
    assert seen["resumed"][0].done == ["model3-s0", "model3-s1"] and seen["resumed"][0].total == 3
    rows = read_jsonl(out / "results.jsonl")
    assert rows[: len(before)] == before  # the kept rows, unchanged, then the new run's
    assert sorted((r["seed"], r["epochs"]) for r in rows) == [(0, 2), (1, 2), (2, 2)]
    assert [r["seed"] for r in result.rows] == [0, 1, 2] and not result.failed
    history = read_jsonl(out / "history.jsonl")
    assert sorted((h["run"], h["epoch"]) for h in history) == [(f"model3-s{s}", e) for s in range(3) for e in (1, 2)]
    assert (out / "results.csv").read_text().count("\n") == 4  # header + 3 rows
    assert not list(out.glob("previous-*"))
    md = (out / "results.md").read_text()
    assert "- resumed: 2 runs were finished by an earlier session into this folder and kept\n" in md
    this = result.meta["wall_seconds"]
    assert [(s["runs"], s["ended_runs"], s["wall_seconds"]) for s in _sessions(out)] == [(3, 2, 400.0), (1, 1, this)]
    assert f"- wall time: {400 + this:.0f} s over 2 sessions (this one: {this:.0f} s, trained 1 run)\n" in md
    assert [f.name for f in result.files[1:]] == ["learning_curves.png", "accuracy_vs_epochs.png",
                                                  "accuracy_vs_face_size.png"]  # plots of kept rows (read back from JSON) too


def test_a_finished_benchmark_rerun_trains_nothing_and_writes_its_report_again(store, tmp_path):
    """Bug 1: rerunning a finished benchmark's own command must not move it aside and train it all again."""
    from benchmark.events import GridFinished
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    first = run_bench(_cfg(store, out, seeds=2))
    rows = read_jsonl(out / "results.jsonl")
    (out / "results.md").unlink()  # e.g. a SIGKILL after the last row, before the report
    (out / "learning_curves.png").unlink()
    events = []
    result = run_bench(_cfg(store, out, seeds=2), on_event=events.append)
    assert [type(e).__name__ for e in events if type(e).__name__ in ("RunStarted", "GridPlanned", "PreviousMoved")] == []
    assert [e for e in events if isinstance(e, GridFinished)] == [GridFinished(2, str(out / "results.md"))]
    assert read_jsonl(out / "results.jsonl") == rows and result.rows == rows and len(first.rows) == 2
    assert not result.failed
    assert not list(out.glob("previous-*")) and "previous_results" not in result.meta
    md = (out / "results.md").read_text()
    assert "- resumed: 2 runs were finished by an earlier session into this folder and kept; this session trained none" in md
    assert "INTERRUPTED" not in md and "| model3 | - | 2 | 2 |" in md
    assert (out / "learning_curves.png").exists()


def test_a_finished_benchmark_of_other_settings_is_moved_aside(store, tmp_path):
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    rows = read_jsonl(out / "results.jsonl")
    on_event, seen = _recorder()
    result = run_bench(_cfg(store, out, seeds=1, epochs=3), on_event=on_event)
    assert seen["started"] == ["model3-s0"] and not seen["resumed"]
    (previous,) = out.glob("previous-*")
    assert result.meta["previous_results"] == str(previous) and read_jsonl(previous / "results.jsonl") == rows


def test_fresh_trains_a_finished_benchmark_again(store, tmp_path):
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    on_event, seen = _recorder()
    run_bench(_cfg(store, out, seeds=1, fresh=True), on_event=on_event)
    assert seen["started"] == ["model3-s0"] and len(list(out.glob("previous-*"))) == 1
    (previous,) = out.glob("previous-*")
    assert len(_sessions(out)) == 1 and len(_sessions(previous)) == 1  # a new benchmark: its own sessions


def test_ctrl_c_after_the_last_run_ended_is_not_an_interruption(store, tmp_path):
    """Bug 1: a KeyboardInterrupt once every run has ended (here right after the last RunEnded) returns the
    finished benchmark: no INTERRUPTED mark, and a rerun trains nothing."""
    from benchmark.events import GridFinished, RunEnded
    from benchmark.harness import run_bench

    out = tmp_path / "o"

    def on_event(event):
        if isinstance(event, RunEnded) and event.run == "model3-s1":
            raise KeyboardInterrupt

    result = run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    assert [r["seed"] for r in result.rows] == [0, 1] and result.meta["interrupted"] is False
    assert "INTERRUPTED" not in (out / "results.md").read_text()
    events = []
    run_bench(_cfg(store, out, seeds=2), on_event=events.append)
    assert any(isinstance(e, GridFinished) for e in events) and not list(out.glob("previous-*"))


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_finished_report_is_written_ends_normally(store, tmp_path, capsys, monkeypatch, sig):
    """Bug 1 through the command: Ctrl-C (or SIGTERM) while the plots of a benchmark whose runs all finished are
    drawn: exit 0 with the table, results.md complete; the same command again says it has finished."""
    import os
    import signal

    from test_bench_run import cli

    from benchmark import report

    out = tmp_path / "o"
    write_plots = report.write_plots

    def signalled(*a, **kw):
        os.kill(os.getpid(), getattr(signal, sig))
        return write_plots(*a, **kw)

    monkeypatch.setattr(report, "write_plots", signalled)
    args = ["bench", "--model", "model3", "--protocol", "quick", "--epochs", "2", "--seeds", "1", "--input-size", "16",
            "--device", "cpu", "--precision", "fp32", "-d", str(store), "--out", str(out)]
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "model3" in stdout and "Results in" in stdout and "Interrupted" not in err and "Terminated" not in err
    md = (out / "results.md").read_text()
    assert "INTERRUPTED" not in md and "| model3 | - | 2 | 1 |" in md
    monkeypatch.setattr(report, "write_plots", write_plots)
    code, stdout, err = cli(capsys, *args)
    assert code == 0 and "Results in" in stdout
    assert (f"Every run of this benchmark has finished (1 run): results in {out / 'results.md'}; --fresh trains it "
            "again") in " ".join(err.split())
    assert not list(out.glob("previous-*"))


def test_the_order_of_the_models_is_not_another_plan(store, tmp_path):
    """Bug 4: `--model model3 --model model1` interrupted, resumed by `--model model1 --model model3`; the runs
    left are trained in the new command's order."""
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    on_event, started = _interrupt_when("model1-bn-s0")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, models=("model3", "model1"), seeds=1), on_event=on_event)
    assert started == ["model3-s0", "model1-bn-s0"]
    on_event, seen = _recorder()
    run_bench(_cfg(store, out, models=("model1", "model3"), seeds=1), on_event=on_event)
    assert seen["resumed"][0].done == ["model3-s0"] and seen["resumed"][0].total == 4
    assert seen["started"] == ["model1-bn-s0", "model1-bcn-s0", "model1-bcn_ws-s0"]
    assert sorted(r["config"] for r in read_jsonl(out / "results.jsonl")) == ["model1-bcn", "model1-bcn_ws",
                                                                               "model1-bn", "model3"]


@pytest.mark.parametrize("change,named", [({"epochs": 3}, "--epochs"), ({"input_size": 14}, "--input-size"),
                                          ({"precision": "bf16"}, "--precision"), ({"seeds": 1}, "seeds")])
def test_an_unfinished_benchmark_of_other_settings_is_refused_not_moved(store, tmp_path, change, named):
    """A typo in a rerun must not move the unfinished benchmark aside (where resuming never looks again)."""
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl
    from lrfp.errors import BenchUsageError

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    rows = read_jsonl(out / "results.jsonl")
    with pytest.raises(BenchUsageError) as e:
        run_bench(_cfg(store, out, **{"seeds": 2, **change}))
    msg = str(e.value)
    assert msg.startswith(f"--out {out} holds an unfinished benchmark of other settings (") and named in msg
    assert "1 of its 2 runs are finished" in msg and "add --fresh" in msg
    assert read_jsonl(out / "results.jsonl") == rows and not list(out.glob("previous-*"))  # nothing moved
    on_event, seen = _recorder()  # its own command still resumes it
    run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    assert seen["started"] == ["model3-s1"]


def test_fresh_starts_anew_and_moves_the_unfinished_one_aside(store, tmp_path):
    from benchmark.events import PreviousMoved
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    events = []
    run_bench(_cfg(store, out, seeds=2, fresh=True), on_event=events.append)
    moved = [e for e in events if isinstance(e, PreviousMoved)]
    (previous,) = out.glob("previous-*")
    assert moved and moved[0].path == str(previous)  # said before the first run, not only at the end
    assert (previous / "plan.json").exists() and (previous / "results.jsonl").exists()


def test_another_split_with_the_same_counts_is_another_plan(smfd_dir, tmp_path):
    """Re-splitting with another seed can keep every count (balanced, fixed sizes): the crops decide."""
    from benchmark.harness import run_bench
    from benchmark.resume import PLAN_JSON
    from lrfp.errors import BenchUsageError

    split_store(tmp_path, smfd_dir, n_groups=50, max_side=16, split="g")
    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(tmp_path / "data", out, seeds=2), on_event=on_event)
    plan = json.loads((out / PLAN_JSON).read_text())
    plan["data"]["crops"] = plan["data"]["members"] = "0" * 20  # as if another split had put other crops there
    (out / PLAN_JSON).write_text(json.dumps(plan))
    with pytest.raises(BenchUsageError, match=r"\(split g: other crops than before \(added, removed or moved between "
                                              r"subsets\)\): 1 of its 2 runs are finished, but the data"):
        run_bench(_cfg(tmp_path / "data", out, seeds=2))


def test_a_second_bench_into_an_out_in_use_is_refused(store, tmp_path):
    import fcntl

    from benchmark.harness import run_bench
    from lrfp.errors import BenchError

    out = tmp_path / "o"
    out.mkdir()
    with open(out / ".bench.lock", "w") as held:  # another lrfp bench holds this --out
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BenchError, match=r"another lrfp bench \(process 4242\) is writing to --out"):
            run_bench(_cfg(store, out, seeds=1))
    assert not (out / "results.jsonl").exists()
    run_bench(_cfg(store, out, seeds=1))  # free again


def test_a_failed_check_leaves_no_empty_out(store, tmp_path):
    from benchmark.harness import run_bench
    from lrfp.errors import LrfpError

    out = tmp_path / "new"
    with pytest.raises(LrfpError):
        run_bench(_cfg(store, out, split="no-such-split"))
    assert not out.exists()


def test_seeds_that_cannot_be_stacked_say_so(store, tmp_path):
    from benchmark.events import Notice
    from benchmark.harness import run_bench

    events = []
    run_bench(_cfg(store, tmp_path / "o", seeds=2, stack_seeds=True, precision="bf16"), on_event=events.append)
    notes = [e.text for e in events if isinstance(e, Notice)]
    assert notes == ["--stack-seeds: model3 trains its 2 seeds one at a time (bf16 on a CPU checks each model's "
                     "gradients for oneDNN's NaN bug, one model at a time)"]


def test_results_md_says_what_this_benchmark_ran(store, tmp_path):
    from benchmark.harness import run_bench

    run_bench(_cfg(store, tmp_path / "o", seeds=2))
    md = (tmp_path / "o" / "results.md").read_text()
    assert "- this benchmark: 2 epochs evaluated at 2, 2 seeds per config" in md
    from benchmark.cpu_allocator import keep_freed_memory  # what run_bench set in this process, and says

    assert f"freed host memory {keep_freed_memory()}" in md


def test_failed_runs_are_tried_again_and_the_finished_ones_kept(store, tmp_path):
    import torch

    from benchmark import registry
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    fail = {"now": True}

    class Flaky(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3 * 16 * 16, 2)

        def forward(self, x):
            if fail["now"]:
                raise RuntimeError("CUDA out of memory (what a transient failure looks like)")
            return self.fc(x.flatten(1))

    @registry.register_model("flaky", input_size=16, quick_input_size=16, min_input_size=1)
    def flaky(**kw):
        return Flaky()

    out = tmp_path / "o"
    try:
        first = run_bench(_cfg(store, out, models=("model3", "flaky"), seeds=1))
        assert [(r["config"], bool(r["error"])) for r in first.rows] == [("model3", False), ("flaky", True)]
        kept = read_jsonl(out / "results.jsonl")[0]
        fail["now"] = False
        on_event, seen = _recorder()
        second = run_bench(_cfg(store, out, models=("model3", "flaky"), seeds=1), on_event=on_event)
    finally:
        registry._REGISTRY.pop("flaky")
    assert seen["started"] == ["flaky-s0"]
    assert [(r["config"], bool(r["error"])) for r in second.rows] == [("model3", False), ("flaky", False)]
    assert read_jsonl(out / "results.jsonl")[0] == kept  # model3's row as the first session wrote it
    assert not second.failed


def test_a_half_written_last_row_is_not_a_finished_run(store, tmp_path):
    """A crash in the middle of writing a row: that run is trained again, the others are kept."""
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s2")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out), on_event=on_event)
    path = out / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # s1's row cut in half
    events = []
    run_bench(_cfg(store, out), on_event=events.append)
    assert [e.run for e in events if type(e).__name__ == "RunStarted"] == ["model3-s1", "model3-s2"]
    assert [e.text for e in events if type(e).__name__ == "Notice"] == [
        "1 line of results.jsonl in --out is not a JSON object (cut short by a crash?) and left out: its run is "
        "trained again"]


def test_ctrl_c_under_fresh_says_to_rerun_without_it(store, tmp_path, capsys, monkeypatch):
    from test_bench_run import cli

    import benchmark.harness

    def interrupted(cfg, on_event=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark.harness, "run_bench", interrupted)
    args = ["bench", "--model", "model3", "--protocol", "quick", "-d", str(store), "--out", str(tmp_path / "o"),
            "--device", "cpu"]
    code, _, err = cli(capsys, *args, "--fresh")
    assert code == 130 and "rerun the command without --fresh to finish" in err
    code, _, err = cli(capsys, *args)
    assert code == 130 and "rerun the same command to finish" in err


def test_the_command_says_it_resumes(store, tmp_path, capsys):
    from test_bench_run import cli

    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    code, stdout, err = cli(capsys, "bench", "--model", "model3", "--protocol", "quick", "--epochs", "2", "--seeds", "2",
                            "--input-size", "16", "--device", "cpu", "--precision", "fp32", "-d", str(store),
                            "--out", str(out))
    assert code == 0
    captured = err + stdout
    assert "Resuming the unfinished benchmark in this --out: 1 of 2 runs are already finished" in captured.replace("\n", " ")


def test_a_second_ctrl_c_while_the_summary_is_written_still_leaves_results_md(store, tmp_path, monkeypatch):
    """Ctrl-C twice (the second one during the wrap-up): results.md and the plots are still written."""
    import os
    import signal

    from benchmark import report
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    write_markdown = report.write_markdown

    def impatient(*a, **kw):  # the user presses Ctrl-C again while results.md is being written
        os.kill(os.getpid(), signal.SIGINT)
        return write_markdown(*a, **kw)

    monkeypatch.setattr(report, "write_markdown", impatient)
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    assert "INTERRUPTED" in (out / "results.md").read_text()
    assert (out / "learning_curves.png").exists()


# -- SIGTERM (bug 6) -----------------------------------------------------------------------------


def _bench_args(store: Path, out: Path, seeds: int = 2) -> list[str]:
    return ["bench", "--model", "model3", "--protocol", "quick", "--epochs", "2", "--seeds", str(seeds), "--input-size",
            "16", "--device", "cpu", "--precision", "fp32", "-d", str(store), "--out", str(out)]


def test_sigterm_mid_benchmark_keeps_the_rows_and_exits_143(store, tmp_path, capsys, monkeypatch):
    """`kill`, `timeout` or a scheduler's pre-emption while model3-s1 starts: s0's rows stay, results.md is
    written and marked INTERRUPTED, the message says how to finish, exit 143; the same command resumes it."""
    import os
    import signal

    from test_bench_run import cli

    from benchmark import engine

    out = tmp_path / "o"
    run = engine.run

    def terminated_at_s1(cfg, *a, **kw):
        if cfg.run_name == "model3-s1":
            os.kill(os.getpid(), signal.SIGTERM)
        return run(cfg, *a, **kw)

    monkeypatch.setattr(engine, "run", terminated_at_s1)
    handler = signal.getsignal(signal.SIGTERM)
    code, _, err = cli(capsys, *_bench_args(store, out))
    assert code == 143
    assert "Terminated (SIGTERM): what was stored stays; rerun the same command to finish." in err
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's handler is gone again
    from benchmark.report import read_jsonl

    assert [(r["seed"], bool(r.get("error"))) for r in read_jsonl(out / "results.jsonl")] == [(0, False)]
    assert "INTERRUPTED" in (out / "results.md").read_text()
    monkeypatch.setattr(engine, "run", run)
    code, stdout, err = cli(capsys, *_bench_args(store, out))
    assert code == 0 and "1 of 2 runs are already finished" in " ".join(err.split())


@pytest.mark.slow
def test_sigterm_to_the_command_process(store, tmp_path):
    """The real signal to the real process, as `kill PID` or `timeout` sends it (the command alone, not its group)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    args = _bench_args(store, out, seeds=1)
    args[args.index("--epochs") + 1] = "400"  # far longer than the test waits
    proc = subprocess.Popen([sys.executable, "-m", "lrfp", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 120
    while time.time() < deadline and not read_jsonl(out / "history.jsonl", skip_bad=True):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Terminated (SIGTERM): what was stored stays; rerun the same command to finish." in err
    assert "INTERRUPTED" in (out / "results.md").read_text() and (out / "plan.json").exists()



@pytest.mark.parametrize("stop", ["error while stopping", "BenchError"])
def test_what_ends_the_grid_early_leaves_results_md_marked_interrupted(store, tmp_path, monkeypatch, stop):
    """An error raised while stopping for Ctrl-C/SIGTERM (as when SIGTERM to the process group kills --jobs' pool
    manager and draining it fails) is still that stop; any end with runs left marks results.md INTERRUPTED."""
    from benchmark import harness
    from benchmark.report import read_jsonl
    from lrfp.errors import BenchError

    run_one = harness._run_one

    def stopped_at_s1(run_cfg, *a, **kw):
        if run_cfg.run_name != "model3-s1":
            return run_one(run_cfg, *a, **kw)
        if stop == "BenchError":
            raise BenchError("the device went away")
        try:
            raise KeyboardInterrupt  # the signal
        finally:
            raise ConnectionResetError(104, "Connection reset by peer")  # the manager killed with the group

    monkeypatch.setattr(harness, "_run_one", stopped_at_s1)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt if stop != "BenchError" else BenchError):
        harness.run_bench(_cfg(store, out, seeds=2))
    assert [r["seed"] for r in read_jsonl(out / "results.jsonl")] == [0]
    assert "INTERRUPTED: only the finished rows below" in (out / "results.md").read_text()

# -- files resume reads that cannot be read (bug 7) ----------------------------------------------


@pytest.mark.parametrize("content,why", [
    (b"", "it is empty"), (b"  \n", "it is empty"), (b'{"runs": [{"run": "model3-s0", "eval', "not JSON"),
    (b"\xff\xfe\x00garbage", "not JSON"), (b"[]", "not a plan lrfp wrote"), (b'{"runs": []}', "not a plan lrfp wrote"),
    (b'{"runs": [{"run": "model3-s0"}]}', "not a plan lrfp wrote"),
    (b'{"runs": [{"run": "model3-s0", "eval_epochs": [[2]]}]}', "not a plan lrfp wrote"),
    (b'{"runs": [{"run": "model3-s0", "eval_epochs": [2]}], "eval_sets": []}', "not a plan lrfp wrote"),
])
def test_a_plan_json_that_is_not_a_plan_says_why(tmp_path, content, why):
    from benchmark.resume import UnreadablePlan, read_earlier

    (tmp_path / "plan.json").write_bytes(content)
    with pytest.raises(UnreadablePlan, match=why):
        read_earlier(tmp_path)


def test_an_unreadable_plan_json_starts_anew_saying_so_and_keeps_the_earlier_results(store, tmp_path, capsys):
    from test_bench_run import cli

    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    rows = read_jsonl(out / "results.jsonl")
    (out / "plan.json").write_text("")  # `: > OUT/plan.json`, or a disk that filled up
    code, stdout, err = cli(capsys, *_bench_args(store, out, seeds=1))
    (previous,) = out.glob("previous-*")
    said = " ".join((err + stdout).split())
    assert code == 0
    assert (f"A new benchmark: {out / 'plan.json'} cannot be read (it is empty), so the benchmark there cannot be "
            f"resumed; the earlier results in this --out were moved to {previous}") in said
    assert f"The earlier results there were moved to {previous} ({out / 'plan.json'} cannot be read" in said
    assert read_jsonl(previous / "results.jsonl") == rows and (previous / "plan.json").read_text() == ""
    assert [r["seed"] for r in read_jsonl(out / "results.jsonl")] == [0]  # trained again, as a new benchmark


def test_results_without_a_plan_json_say_so_when_moved(store, tmp_path):
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    (out / "plan.json").unlink()  # an older lrfp's results, or removed by hand
    events = []
    run_bench(_cfg(store, out, seeds=1), on_event=events.append)
    (moved,) = [e for e in events if type(e).__name__ == "PreviousMoved"]
    assert moved.reason == f"{out} holds results but no plan.json (an older lrfp's, or removed), so they cannot be resumed"


@pytest.mark.parametrize("name", ["results.jsonl", "history.jsonl", "plan.json"])
def test_a_file_resume_cannot_read_at_all_is_named_and_nothing_moves(store, tmp_path, capsys, name):
    from test_bench_run import cli

    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s0")  # plan.json written, no run finished
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=1), on_event=on_event)
    (out / name).unlink(missing_ok=True)
    (out / name).mkdir()  # a folder in its place: read_bytes fails with an OSError, as without read permission
    code, _, err = cli(capsys, *_bench_args(store, out, seeds=1))
    assert code == 1
    assert err.startswith(f"Error: {out / name} cannot be read (Is a directory), so the benchmark in {out} cannot "
                          "be resumed: make it readable, or add --fresh")
    assert (out / name).is_dir() and not list(out.glob("previous-*"))


def test_a_lock_file_that_cannot_be_opened_is_named(store, tmp_path):
    from benchmark.harness import run_bench
    from lrfp.errors import BenchError

    out = tmp_path / "o"
    (out / ".bench.lock").mkdir(parents=True)
    with pytest.raises(BenchError, match=rf"^--out {out}: its lock file {out / '.bench.lock'} cannot be opened "
                                         r"\(Is a directory\); remove it"):
        run_bench(_cfg(store, out, seeds=1))


def test_a_held_lock_with_garbage_in_it_is_still_refused_clearly(store, tmp_path):
    import fcntl

    from benchmark.harness import run_bench
    from lrfp.errors import BenchError

    out = tmp_path / "o"
    out.mkdir()
    with open(out / ".bench.lock", "wb") as held:
        held.write(b"\xff\xfe\x00")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BenchError, match=r"another lrfp bench \(process .+\) is writing to --out"):
            run_bench(_cfg(store, out, seeds=1))


# -- the plan's data identity (tester's report 2, bugs B, D, E, G) -------------------------------------------


def _fake_data(name: str, kind: str = "dataset", labels=(0, 1, 0, 1), seed=None, pixel: int = 0):
    import numpy as np

    from benchmark.data import BenchData, Subset

    subsets = {s: Subset([np.full((4, 4, 3), pixel + i, np.uint8) for i in range(len(labels))],
                         np.asarray(labels, dtype=np.int64), np.asarray([4] * len(labels)),
                         [f"{s}/{i}" for i in range(len(labels))]) for s in ("train", "validation", "test")}
    return BenchData(name=name, kind=kind, subsets=subsets,
                     audit={"split": "published" if kind == "dataset" else "g", "split_seed": seed})


def _plan_of(data, seeds=(0,), epochs=2, eval_sets=None, precision="fp32"):
    from benchmark.engine import RunConfig
    from benchmark.resume import plan

    runs = [RunConfig(model="model3", norm=None, seed=s, epochs=epochs, eval_epochs=(epochs,), input_size=16,
                      optimizer="adam") for s in seeds]
    return plan(runs, data, eval_sets or {}, precision, False, "cpu")


def test_a_dataset_path_spelled_another_way_is_the_same_plan(tmp_path, monkeypatch):
    """Bug B: `--dataset /x/pub`, `/x/pub/`, `pub` from /x and `/x/../x/pub` are one folder; the plan records its
    resolved path and is compared by content; a Hub repo id stays as given."""
    from benchmark.resume import same_plan

    (tmp_path / "pub").mkdir()
    monkeypatch.chdir(tmp_path)
    spellings = [str(tmp_path / "pub"), f"{tmp_path / 'pub'}/", "pub", "./pub/", f"{tmp_path}/../{tmp_path.name}/pub"]
    plans = [_plan_of(_fake_data(s)) for s in spellings]
    assert {p["data"]["name"] for p in plans} == {str((tmp_path / "pub").resolve())}
    assert all(same_plan(plans[0], p) for p in plans)
    assert _plan_of(_fake_data("owner/masks"))["data"]["name"] == "owner/masks"
    # a plan an older lrfp wrote: the path as typed, no members/pixels/split_seed/eval_images: still the same plan
    old = json.loads(json.dumps(plans[0]))
    old["data"]["name"] = "pub/"
    for key in ("members", "pixels", "split_seed"):
        del old["data"][key]
    del old["eval_images"]
    assert same_plan(old, plans[1]) and same_plan(plans[1], old)
    assert not same_plan(old, _plan_of(_fake_data("pub", labels=(1, 1, 0, 1))))  # a relabel is still seen


def test_a_store_given_by_another_path_resumes(store, tmp_path, monkeypatch):
    """Bug B for -d: the store's folder spelled relative, with a trailing slash, resumes the same benchmark."""
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    monkeypatch.chdir(store.parent)
    on_event, seen = _recorder()
    run_bench(_cfg(Path(f"./{store.name}/"), out, seeds=2), on_event=on_event)
    assert seen["started"] == ["model3-s1"] and seen["resumed"][0].done == ["model3-s0"]


def test_what_a_superset_plan_may_reuse(tmp_path):
    """Bug D: only more runs with everything else identical reuse the finished runs; each other change does not."""
    from benchmark.resume import added_runs

    data = _fake_data(str(tmp_path))
    before = _plan_of(data, seeds=(0,))
    assert added_runs(before, _plan_of(data, seeds=(0, 1))) == ["model3-s1"]
    assert added_runs(before, _plan_of(data, seeds=(0,))) == []
    for other in (_plan_of(data, seeds=(0, 1), epochs=3), _plan_of(data, seeds=(1, 2)),
                  _plan_of(_fake_data(str(tmp_path), labels=(1, 1, 0, 1)), seeds=(0, 1)),
                  _plan_of(_fake_data(str(tmp_path), pixel=9), seeds=(0, 1)),
                  _plan_of(data, seeds=(0, 1), precision="bf16"),
                  _plan_of(data, seeds=(0, 1), eval_sets={"ev": data.subsets["test"]})):
        assert added_runs(before, other) is None


def test_a_finished_benchmark_given_more_seeds_trains_only_the_new_ones(store, tmp_path):
    """Bug D: `--seeds 1` finished, then `--seeds 2`: seed 0's rows, history and checkpoint are kept, only seed 1
    trains, and a Notice says so; a later Ctrl-C resumes the new plan."""
    from benchmark.events import Notice, PreviousMoved
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    rows = read_jsonl(out / "results.jsonl")
    history = read_jsonl(out / "history.jsonl")
    ckpt = (out / "checkpoints" / "model3.pt").read_bytes()
    events = []
    result = run_bench(_cfg(store, out, seeds=2), on_event=events.append)
    assert [e.run for e in events if type(e).__name__ == "RunStarted"] == ["model3-s1"]
    assert not [e for e in events if isinstance(e, PreviousMoved)] and not list(out.glob("previous-*"))
    notes = [e.text for e in events if isinstance(e, Notice)]
    assert ("this command adds 1 run (model3-s1) to the benchmark in this --out, with the same data, eval sets and "
            "options: its 1 finished run is kept and only the others are trained (--fresh trains them all)") in notes
    assert read_jsonl(out / "results.jsonl")[:1] == rows and [r["seed"] for r in result.rows] == [0, 1]
    assert read_jsonl(out / "history.jsonl")[: len(history)] == history
    assert (out / "checkpoints" / "model3.pt").exists() and ckpt  # kept (replaced only by better weights)
    events = []
    run_bench(_cfg(store, out, seeds=2), on_event=events.append)  # plan.json is now the 2-seed plan
    assert [type(e).__name__ for e in events if type(e).__name__ in ("GridFinished", "RunStarted")] == ["GridFinished"]
    # one benchmark, extended: its wall time counts all three sessions
    assert [(s["runs"], s["ended_runs"]) for s in _sessions(out)] == [(1, 1), (1, 1), (0, 0)]
    assert "over 3 sessions (this one: 0 s, trained nothing)" in (out / "results.md").read_text()


def test_a_finished_benchmark_of_other_settings_says_what_differs(store, tmp_path):
    """Bug D: a finished benchmark moved aside for a new one names what changed."""
    from benchmark.events import PreviousMoved
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    events = []
    run_bench(_cfg(store, out, seeds=1, epochs=3), on_event=events.append)
    (moved,) = [e for e in events if isinstance(e, PreviousMoved)]
    assert moved.reason.startswith("the finished benchmark there is of other settings (--epochs 2 before, 3 now; ")


def test_changed_data_under_an_unfinished_benchmark_says_what_and_that_only_fresh_helps(smfd_dir, tmp_path):
    """Bug E: a relabeled crop, then the split made again with another seed, under an interrupted benchmark:
    the refusal says which, and that --fresh or another --out is the way on (its own command cannot be)."""
    from benchmark.harness import run_bench
    from lrfp.errors import BenchUsageError
    from lrfp.store import open_store

    split_store(tmp_path, smfd_dir, n_groups=50, max_side=16, split="g")
    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(tmp_path / "data", out, seeds=2), on_event=on_event)
    with open_store(tmp_path / "data", create=False) as st:
        crop = st.split_crops("g", "test")[0]
        st.add_label(crop["id"], "without_mask" if crop["label"] == "with_mask" else "with_mask", "tester")
    with pytest.raises(BenchUsageError) as e:
        run_bench(_cfg(tmp_path / "data", out, seeds=2))
    assert str(e.value) == (
        f"--out {out} holds an unfinished benchmark of other settings (split g: the labels of some of its crops "
        "changed): 1 of its 2 runs are finished, but the data it trained on is no longer there, so rerunning its own "
        "command cannot finish it. Add --fresh to start this one there (the earlier results move to "
        "previous-<time>/), or give another --out")
    with open_store(tmp_path / "data", create=False) as st:
        grouped_split(st, "g", seed=1)
    with pytest.raises(BenchUsageError, match=r"\(split g was made again with another seed \(0 before, 1 now\): other "
                                              r"crops are in train, validation and test\).*Add --fresh"):
        run_bench(_cfg(tmp_path / "data", out, seeds=2))
    assert not list(out.glob("previous-*"))


def test_an_eval_on_folder_with_another_image_says_so(store, tmp_path):
    """Bug E: an image added to the --eval-on folder under an interrupted benchmark."""
    from PIL import Image

    from benchmark.harness import run_bench
    from lrfp.errors import BenchUsageError

    ev = tmp_path / "ev"
    for i, label in enumerate(["with_mask", "without_mask"] * 2):
        (ev / label).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i, 90, 200 - 40 * i)).save(ev / label / f"{i}.png")
    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2, eval_on=str(ev)), on_event=on_event)
    Image.new("RGB", (16, 16), (1, 2, 3)).save(ev / "with_mask" / "new.png")
    with pytest.raises(BenchUsageError, match=r"\(--eval-on ev: its images changed \(4 before, 5 now\) \(added, "
                                              r"removed, renamed or moved to another class\)\).*Add --fresh") as e:
        run_bench(_cfg(store, out, seeds=2, eval_on=str(ev)))
    assert "Rerun its own command" not in str(e.value)


def test_a_removed_history_jsonl_is_said_on_resume(store, tmp_path):
    """Bug G: resuming with history.jsonl deleted keeps the rows and says the kept runs have no learning curves."""
    from benchmark.events import Notice
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    (out / "history.jsonl").unlink()
    events = []
    run_bench(_cfg(store, out, seeds=2), on_event=events.append)
    assert (f"{out / 'history.jsonl'} is missing, so the kept run (model3-s0) has no learning curve (its rows are "
            "kept; --fresh trains every run again, with curves)") in [e.text for e in events if isinstance(e, Notice)]


def test_an_unfinished_benchmark_rotated_bilinear_by_an_older_lrfp_is_not_resumed(store, tmp_path):
    """lrfp before 2026-11-30 rotated with bilinear sampling and its plan.json does not say so: its runs are not
    mixed with runs rotated the torchvision way (nearest); the refusal names the difference."""
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl
    from lrfp.errors import BenchUsageError

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    plan = json.loads((out / "plan.json").read_text())
    assert {r["rotation_interpolation"] for r in plan["runs"]} == {"nearest"}
    for r in plan["runs"]:  # as an older lrfp wrote it
        del r["rotation_interpolation"]
    (out / "plan.json").write_text(json.dumps(plan))
    rows = read_jsonl(out / "results.jsonl")
    with pytest.raises(BenchUsageError) as e:
        run_bench(_cfg(store, out, seeds=2))
    assert "(rotation interpolation bilinear before, nearest now" in str(e.value)
    # its own command is this one: the refusal must not send the user back to it (tester's bug H)
    assert "an older lrfp made it with settings this one no longer has" in str(e.value)
    assert "Rerun its own command" not in str(e.value) and "Add --fresh" in str(e.value)
    assert read_jsonl(out / "results.jsonl") == rows


def _bench_cli(capsys, store: Path, out: Path, seeds: int = 1) -> tuple[int, str, str]:
    from bench_helpers import cli_run

    return cli_run(capsys, "bench", "-d", str(store), "--split", "g", "--model", "model3", "--protocol", "quick",
                   "--epochs", "2", "--seeds", str(seeds), "--input-size", "16", "--device", "cpu", "--precision",
                   "fp32", "--out", str(out))


def _wall_lines(out: Path, stdout: str) -> tuple[list[str], list[str]]:
    """(the wall time line of results.md, that of the terminal)."""
    md = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("- wall time:")]
    return md, [line for line in stdout.splitlines() if line.startswith("Wall time:")]


def test_the_report_and_terminal_give_the_wall_time_over_every_session_also_when_a_rerun_trains_nothing(
        store, tmp_path, capsys):
    """A finished benchmark rerun unchanged used to report this invocation's ~0 s as the benchmark's wall time."""
    out = tmp_path / "o"
    code, stdout, _ = _bench_cli(capsys, store, out)
    assert code == 0
    (first,) = _sessions(out)
    assert (first["runs"], first["ended_runs"]) == (1, 1)
    wall = f"{first['wall_seconds']:.0f} s, one session"
    assert _wall_lines(out, stdout) == ([f"- wall time: {wall}"], [f"Wall time: {wall}"])

    _set_wall_seconds(out, 0, 412.4)  # as if it had taken 412 s (the test must not depend on the clock)
    code, stdout, _ = _bench_cli(capsys, store, out)  # finished: trains nothing, writes the report again
    assert code == 0
    wall = "412 s over 2 sessions (this one: 0 s, trained nothing)"
    assert _wall_lines(out, stdout) == ([f"- wall time: {wall}"], [f"Wall time: {wall}"])
    assert [(s["runs"], s["ended_runs"]) for s in _sessions(out)] == [(1, 1), (0, 0)]


def test_the_report_gives_the_whole_command_time_beside_the_training_time(store, tmp_path, capsys):
    """The wall time is training only; reading the split and decoding the crops are in the command's time."""
    from benchmark.report import command_time_words

    out = tmp_path / "o"
    code, stdout, _ = _bench_cli(capsys, store, out)
    assert code == 0
    md = (out / "results.md").read_text().splitlines()
    (line,) = [x for x in md if x.startswith("- this command: ")]
    whole, _, rest = line.removeprefix("- this command: ").partition(" s from its start to this report (")
    training = rest.partition(" s of it training; the rest reading the split, decoding the crops and checks)")[0]
    assert float(whole) >= float(training) == round(_sessions(out)[0]["wall_seconds"])
    assert f"This command: {line.removeprefix('- this command: ')}" in stdout.splitlines()
    assert command_time_words({"command_seconds": 9.6, "wall_seconds": 2.2}) == (
        "10 s from its start to this report (2 s of it training; the rest reading the split, decoding the crops "
        "and checks)")
    assert command_time_words({"wall_seconds": 2.2}) is None  # a results.json of an older lrfp


def test_an_out_folder_of_an_lrfp_that_did_not_record_sessions_says_its_wall_time_is_unknown(store, tmp_path, capsys):
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    plan = json.loads((out / "plan.json").read_text())
    del plan["sessions"]  # what an older lrfp wrote
    (out / "plan.json").write_text(json.dumps(plan))

    code, stdout, _ = _bench_cli(capsys, store, out, seeds=2)  # resumes: trains model3-s1
    assert code == 0
    this = _sessions(out)[-1]["wall_seconds"]
    wall = (f"unknown: the earlier sessions were run by an lrfp that did not record their wall time (this one: "
            f"{this:.0f} s, trained 1 run)")
    assert _wall_lines(out, stdout) == ([f"- wall time: {wall}"], [f"Wall time: {wall}"])

    _set_wall_seconds(out, 1, 30.0)
    code, stdout, _ = _bench_cli(capsys, store, out, seeds=2)  # finished: trains nothing
    assert code == 0
    wall = ("unknown: the earlier sessions were run by an lrfp that did not record their wall time; the 2 sessions "
            "since took 30 s (this one: 0 s, trained nothing)")
    assert _wall_lines(out, stdout) == ([f"- wall time: {wall}"], [f"Wall time: {wall}"])
    assert _sessions(out)[0] == {"unrecorded": "the sessions of an lrfp that did not record them"}


def test_a_session_killed_before_it_recorded_its_wall_time_makes_the_total_a_lower_bound():
    """A SIGKILL (or a crash) leaves its session in plan.json with wall_seconds null."""
    from benchmark.report import wall_time_words

    killed = {"runs": 3, "ended_runs": 0, "wall_seconds": None}
    sessions = [{"runs": 3, "ended_runs": 1, "wall_seconds": 100.0}, killed, {"runs": 2, "ended_runs": 1, "wall_seconds": 7.2}]
    assert wall_time_words({"wall_seconds": 7.2, "sessions": sessions}) == (
        "at least 107 s over 3 sessions (1 ended without recording its wall time: killed?; this one: 7 s, 1 of its 2 "
        "runs ended)")
    assert wall_time_words({"wall_seconds": 3.0}) == "3 s"  # a meta without sessions (a caller's own)


def test_the_precision_line_describes_every_run_of_a_resumed_benchmark(store, tmp_path, monkeypatch):
    """Tester's bug D: `--precision auto` chose bf16 for one config and fp32 for another; the session that resumed
    trained only the fp32 one, and results.md's device line said fp32 for the whole benchmark."""
    from types import SimpleNamespace

    from benchmark import precision
    from benchmark.harness import run_bench
    from benchmark.report import read_jsonl

    # the probe's choice made fixed (it times the machine): bf16 for Model 3, fp32 for Model 1-bn
    monkeypatch.setattr(precision, "probe", lambda r: SimpleNamespace(
        bf16=r.model == "model3", fp32_ms=2.0, bf16_ms=1.0 if r.model == "model3" else 3.0, cached=False))
    out = tmp_path / "o"
    cfg = dict(models=("model3", "model1"), precision="auto", seeds=1)
    on_event, _ = _interrupt_when("model1-bn-s0")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, **cfg), on_event=on_event)
    run_bench(_cfg(store, out, **cfg))
    amps = {r["config"]: r["amp"] for r in read_jsonl(out / "results.jsonl") if not r.get("error")}
    assert amps["model3"] == "bf16" and amps["model1-bn"] == "fp32"
    (device_line,) = [x for x in (out / "results.md").read_text().splitlines() if x.startswith("- device:")]
    assert "per config, by a timed probe (see the amp column)" in device_line, device_line


def test_sigterm_while_the_table_is_printed_ends_as_a_finished_benchmark(store, tmp_path, capsys, monkeypatch):
    """Tester's bug G: docs/bench.md says a signal after every run ended interrupts nothing; one that came while
    the terminal table was printed exited 143 with "rerun ... to finish" and no table."""
    import os
    import signal

    from bench_helpers import cli_run

    from lrfp.cli import tables

    real = tables.bench_summary_table

    def signalled_while_printing(*a, **kw):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # a handler runs at the next bytecode boundary
            pass
        return real(*a, **kw)

    monkeypatch.setattr(tables, "bench_summary_table", signalled_while_printing)
    code, out, err = cli_run(capsys, "bench", "-d", str(store), "--split", "g", "--model", "model3", "--protocol",
                             "quick", "--epochs", "1", "--seeds", "1", "--input-size", "16", "--device", "cpu",
                             "--precision", "fp32", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "model3" in out and "Wall time:" in out and "Terminated" not in err
