"""A run is finished only when its checkpoint step is done (bug A of /work/bench-bugs2.md), and a checkpoint or
results file that cannot be written is one clear failure, not a result and a failure at once (bug C)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench_helpers import split_store


@pytest.fixture(scope="module")
def store(smfd_dir, tmp_path_factory) -> Path:
    return split_store(tmp_path_factory.mktemp("ckstep"), smfd_dir, n_groups=50, max_side=16, split="g")


def _cfg(store: Path, out: Path, **kw):
    from benchmark.harness import BenchConfig

    base = dict(data_dir=store, out=out, models=("model3",), protocol="quick", epochs=2, seeds=1, input_size=16,
                device="cpu", precision="fp32")
    return BenchConfig(**{**base, **kw})


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
