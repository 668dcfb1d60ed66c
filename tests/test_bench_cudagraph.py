"""`lrfp bench --cuda-graph` (benchmark/cudagraph.py): a training step replayed as a CUDA graph.

On a CPU, `RerunGraph` stands in for `torch.cuda.CUDAGraph` (this machine has no GPU): it records the step
at capture and runs it again at each replay, as a graph re-executes its kernels. That checks everything
around the capture (warm-up count, static input copies, the remainder batch run eagerly, the sums that
live across epochs, the same numbers as the plain loop). The capture itself, CUDA's memory pool and
capturable Adam are checked by the `gpu` tests at the end, which the default run leaves out.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmark.cudagraph import WARMUP_STEPS, GraphedStep
from benchmark.engine import RunConfig, TrainStep, make_optimizer, train_one_epoch
from benchmark.registry import create_model
from benchmark.stacked import StackedSeeds


class RerunGraph:
    """A CPU stand-in for torch.cuda.CUDAGraph: `capture(fn)` records, `replay()` runs fn again."""

    def __init__(self) -> None:
        self.fn = None

    def capture(self, fn) -> None:
        self.fn = fn

    def replay(self) -> None:
        self.fn()


def _data(n: int, size: int = 32):
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.randint(0, 2, (n,), generator=g)


def _train(model: str, norm: str | None, optimizer: str, graph: bool, epochs: int = 2, n: int = 100, amp: bool = False):
    x, y = _data(n)
    cfg = RunConfig(model=model, norm=norm, seed=0, epochs=epochs, eval_epochs=(epochs,), input_size=32,
                    optimizer=optimizer, batch_size=16, cuda_graph=graph, amp=amp, channels_last=amp)
    torch.manual_seed(0)
    m = create_model(model, norm=norm, input_size=32).to(memory_format=torch.channels_last if amp else torch.contiguous_format)
    opt = make_optimizer(m, cfg)
    gen = torch.Generator().manual_seed(0)
    step = TrainStep(m, opt, cfg, graph_factory=RerunGraph if graph else None)
    stats = [train_one_epoch(m, opt, x, y, cfg, gen, step) for _ in range(epochs)]
    return m, stats, step


@pytest.mark.parametrize("model,norm,optimizer", [("model3", None, "adam"), ("model1", "bn", "sgd")])
def test_a_graphed_run_gives_the_plain_loops_numbers(model, norm, optimizer):
    plain, plain_stats, _ = _train(model, norm, optimizer, graph=False)
    graphed, graphed_stats, step = _train(model, norm, optimizer, graph=True)
    # 100 images in batches of 16: 6 full batches and a remainder of 4, two epochs
    g = step.graphed
    assert (g.warmup_steps, g.replays, g.eager_steps) == (WARMUP_STEPS, 2 * 6 - WARMUP_STEPS, 2)
    for a, b in zip(plain_stats, graphed_stats):
        assert (a["loss"], a["accuracy"], a["images"]) == (b["loss"], b["accuracy"], b["images"])
    for name, value in plain.state_dict().items():  # weights and BatchNorm's running statistics, bit for bit
        assert torch.equal(graphed.state_dict()[name], value), name


def test_graphed_bf16_on_a_cpu_runs_the_same_steps():
    """Autocast without its weight cache (as capture needs) changes nothing in the numbers."""
    plain, plain_stats, _ = _train("model1", "bn", "sgd", graph=False, epochs=1, amp=True)
    graphed, graphed_stats, _ = _train("model1", "bn", "sgd", graph=True, epochs=1, amp=True)
    assert plain_stats[0]["loss"] == graphed_stats[0]["loss"]
    for name, value in plain.state_dict().items():
        assert torch.equal(graphed.state_dict()[name], value), name


def test_after_capture_other_batch_sizes_keep_the_gradient_tensors():
    """A remainder batch after the capture zeroes the gradients in place, so that `p.grad` stays the tensor the
    graph writes (set to None, the graph's own would go back to its pool while it still writes into them)."""
    calls: list[tuple[int, bool]] = []
    step = GraphedStep(lambda xb, yb, set_to_none: calls.append((xb.shape[0], set_to_none)), warmup=2,
                       graph_factory=RerunGraph)
    full, rest = (torch.zeros(8, 3), torch.zeros(8)), (torch.zeros(5, 3), torch.zeros(5))
    for batch in (full, rest, full, full, rest, full, rest):
        step(*batch)
    assert calls == [
        (8, True), (5, True), (8, True),  # before the capture: set to None, as the plain loop does
        (8, True),  # the capture (gradients allocated from the graph's pool), replayed once
        (5, False), (8, True), (5, False),  # after it: other sizes zero in place; replays rerun the capture
    ]
    assert (step.warmup_steps, step.replays, step.eager_steps) == (2, 2, 3)


def test_a_static_input_keeps_the_batchs_memory_format():
    seen = []
    step = GraphedStep(lambda xb, yb, s: seen.append(xb.is_contiguous(memory_format=torch.channels_last)), warmup=0,
                       graph_factory=RerunGraph)
    xb = torch.rand(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    step(xb, torch.zeros(4))
    step(torch.rand(4, 3, 8, 8).contiguous(memory_format=torch.channels_last), torch.zeros(4))
    assert seen == [True, True]
    assert torch.equal(step._static_x, step._static_x.contiguous(memory_format=torch.channels_last))


def test_stacked_seeds_graphed_equal_stacked_plain():
    x, y = _data(100)

    def stacked(graph: bool):
        models = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            models.append(create_model("model1", norm="bn", input_size=32))
        s = StackedSeeds(models, "sgd", lr=0.001, cuda_graph=graph, graph_factory=RerunGraph)
        gens = [torch.Generator().manual_seed(k) for k in (0, 1)]
        return s, [s.train_one_epoch(x, y, gens, 16, 15.0) for _ in range(2)]

    plain, plain_stats = stacked(False)
    graphed, graphed_stats = stacked(True)
    assert graphed.graphed.replays == 2 * 6 - WARMUP_STEPS and graphed.graphed.eager_steps == 2
    for pe, ge in zip(plain_stats, graphed_stats):
        assert [(r["loss"], r["accuracy"]) for r in pe] == [(r["loss"], r["accuracy"]) for r in ge]
    for k in (0, 1):
        for name, value in plain.model(k).state_dict().items():
            assert torch.equal(graphed.model(k).state_dict()[name], value), (k, name)


def test_cuda_graph_options_that_cannot_work_are_refused(tmp_path, capsys):
    from test_bench_run import cli

    code, _, err = cli(capsys, "bench", "--model", "model3", "--cuda-graph", "--device", "cpu", "--out", str(tmp_path / "o"))
    assert code == 2 and err == "Error: --cuda-graph needs a CUDA device, not --device cpu"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--cuda-graph", "--compile", "default", "--device", "cuda",
                       "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("Error: --cuda-graph cannot be combined with --compile default")
    assert not (tmp_path / "o").exists()  # refused before anything was made


def test_cuda_graph_with_device_auto_on_a_machine_without_cuda_is_refused(tmp_path, capsys, monkeypatch):
    from test_bench_run import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = cli(capsys, "bench", "--model", "model3", "--cuda-graph", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("Error: --cuda-graph needs a CUDA device, and --device auto resolved to cpu")


# -- on a GPU (left out of the default run: -m "not gpu") --------------------------------------------


def _cuda_or_skip() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (the default run leaves gpu tests out: -m 'not gpu')")


@pytest.mark.gpu
@pytest.mark.parametrize("model,norm,optimizer", [("model3", None, "adam"), ("model1", "bn", "sgd")])
def test_a_captured_step_trains_like_the_eager_one_on_a_gpu(model, norm, optimizer):
    _cuda_or_skip()
    x, y = (t.cuda() for t in _data(300))
    results = []
    for graph in (False, True):
        cfg = RunConfig(model=model, norm=norm, seed=0, epochs=2, eval_epochs=(2,), input_size=32, optimizer=optimizer,
                        batch_size=64, device="cuda", amp=True, channels_last=True, cuda_graph=graph)
        torch.manual_seed(0)
        m = create_model(model, norm=norm, input_size=32).to("cuda", memory_format=torch.channels_last)
        # both with the graphed run's optimizer (Adam capturable=True: other kernels than capturable=False), so
        # that only the graph differs
        opt = make_optimizer(m, replace(cfg, cuda_graph=True))
        gen = torch.Generator(device="cuda").manual_seed(0)
        step = TrainStep(m, opt, cfg)
        stats = [train_one_epoch(m, opt, x, y, cfg, gen, step) for _ in range(2)]
        results.append((m, stats, step))
    (plain, ps, _), (graphed, gs, step) = results
    assert step.graphed.replays == 2 * 4 - WARMUP_STEPS and step.graphed.eager_steps == 2  # 300 = 4 x 64 + 44
    for a, b in zip(ps, gs):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-2)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(graphed.state_dict()[name].float(), value.float(), rtol=1e-2, atol=1e-3, msg=name)


@pytest.mark.gpu
def test_a_graphed_grid_on_a_gpu(tmp_path, smfd_dir):
    _cuda_or_skip()
    from bench_helpers import grouped_split
    from benchmark.harness import BenchConfig, run_bench
    from conftest import build_store

    store = build_store(tmp_path / "data", smfd_dir, n_groups=60, max_side=32)
    grouped_split(store, "g", seed=0)
    store.close()
    common = dict(data_dir=tmp_path / "data", models=("model3", "model1", "alexnet"), protocol="quick", epochs=3,
                  seeds=2, device="cuda", pretrained=False, jobs=1)
    plain = run_bench(BenchConfig(out=tmp_path / "plain", **common))
    graphed = run_bench(BenchConfig(out=tmp_path / "graphed", cuda_graph=True, **common))
    assert not plain.failed and not graphed.failed
    assert {r["cuda_graph"] for r in graphed.rows} == {True}
    by_key = {(r["config"], r["seed"], r["epochs"]): r for r in plain.rows}
    for r in graphed.rows:  # the same protocol: the accuracies agree within their intervals
        p = by_key[(r["config"], r["seed"], r["epochs"])]
        assert abs(r["accuracy"] - p["accuracy"]) <= max(p["accuracy"] - p["acc_ci_low"], 0.05)


@pytest.mark.gpu
def test_stacked_seeds_captured_on_a_gpu_train_like_eager_stacked_seeds():
    _cuda_or_skip()
    x, y = (t.cuda() for t in _data(300))
    out = []
    for graph in (False, True):
        models = []
        for seed in (0, 1, 2):
            torch.manual_seed(seed)
            models.append(create_model("model1", norm="bn", input_size=32).cuda())
        s = StackedSeeds(models, "sgd", lr=0.001, cuda_graph=graph)
        gens = [torch.Generator(device="cuda").manual_seed(k) for k in (0, 1, 2)]
        out.append((s, [s.train_one_epoch(x, y, gens, 64, 15.0, amp=True) for _ in range(2)]))
    (plain, ps), (graphed, gs) = out
    assert graphed.graphed.replays == 2 * 4 - WARMUP_STEPS and graphed.graphed.eager_steps == 2
    for pe, ge in zip(ps, gs):
        for a, b in zip(pe, ge):
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-2)
    for k in (0, 1, 2):
        for name, value in plain.model(k).state_dict().items():
            torch.testing.assert_close(graphed.model(k).state_dict()[name].float(), value.float(), rtol=1e-2, atol=1e-3)


def test_a_graphed_config_without_its_step_is_refused():
    """A graph made inside one epoch would be captured again every epoch: the run's TrainStep must be passed."""
    x, y = _data(40)
    cfg = RunConfig(model="model3", norm=None, seed=0, epochs=1, eval_epochs=(1,), input_size=32, optimizer="adam",
                    batch_size=16, cuda_graph=True)
    m = create_model("model3", input_size=32)
    with pytest.raises(ValueError, match="needs the run's TrainStep"):
        train_one_epoch(m, make_optimizer(m, cfg), x, y, cfg, torch.Generator().manual_seed(0))
