"""Rerunning an interrupted `lrfp bench` into the same --out trains only what it did not finish (benchmark/resume.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_helpers import grouped_split
from conftest import build_store


@pytest.fixture(scope="module")
def store(smfd_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    s = build_store(root / "data", smfd_dir, n_groups=50, max_side=16)
    grouped_split(s, "g", seed=0)
    s.close()
    return root / "data"


def _cfg(store: Path, out: Path, **kw):
    from benchmark.harness import BenchConfig

    base = dict(data_dir=store, out=out, models=("model3",), protocol="quick", epochs=2, seeds=3, input_size=16,
                device="cpu", precision="fp32")
    return BenchConfig(**{**base, **kw})


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
    assert "- resumed: 2 runs were finished by an earlier, interrupted session" in (out / "results.md").read_text()


def test_a_finished_benchmark_rerun_is_a_new_one(store, tmp_path):
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    run_bench(_cfg(store, out, seeds=1))
    on_event, seen = _recorder()
    result = run_bench(_cfg(store, out, seeds=1), on_event=on_event)
    assert seen["started"] == ["model3-s0"] and not seen["resumed"]
    assert len(list(out.glob("previous-*"))) == 1 and "previous_results" in result.meta


@pytest.mark.parametrize("change", [{"epochs": 3}, {"input_size": 14}, {"fresh": True}, {"precision": "bf16"}])
def test_other_settings_or_fresh_start_a_new_benchmark(store, tmp_path, change):
    from benchmark.harness import run_bench

    out = tmp_path / "o"
    on_event, _ = _interrupt_when("model3-s1")
    with pytest.raises(KeyboardInterrupt):
        run_bench(_cfg(store, out, seeds=2), on_event=on_event)
    on_event, seen = _recorder()
    run_bench(_cfg(store, out, seeds=2, **change), on_event=on_event)
    assert seen["started"] == ["model3-s0", "model3-s1"] and not seen["resumed"]
    (previous,) = out.glob("previous-*")
    assert (previous / "plan.json").exists() and (previous / "results.jsonl").exists()


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
    on_event, seen = _recorder()
    run_bench(_cfg(store, out), on_event=on_event)
    assert seen["started"] == ["model3-s1", "model3-s2"]


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
