"""Stacked seeds (benchmark/stacked.py) give the numbers of separate runs: each seed its own init, data order,
augmentation and optimizer state. Checked on the CPU (the speed is for GPUs and measured in perf/)."""

from __future__ import annotations

import pytest
import torch

from benchmark.engine import RunConfig, make_optimizer, train_one_epoch
from benchmark.registry import create_model
from benchmark.stacked import StackedSeeds, stackable


def _data(n: int = 40, size: int = 32):
    g = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g), torch.randint(0, 2, (n,), generator=g)


@pytest.mark.parametrize("model,norm,optimizer", [("model3", None, "adam"), ("model1", "bn", "sgd"), ("model1", "bcn_ws", "sgd")])
def test_stacked_seeds_equal_separate_runs(model, norm, optimizer):
    x, y = _data()
    seeds, size, batch, epochs = (0, 1, 2), 32, 16, 2  # 40 images: batches of 16, 16 and a remainder of 8
    separate = []
    for seed in seeds:
        cfg = RunConfig(model=model, norm=norm, seed=seed, epochs=epochs, eval_epochs=(epochs,), input_size=size,
                        optimizer=optimizer, batch_size=batch, lr=0.001)
        torch.manual_seed(seed)
        m = create_model(model, norm=norm, input_size=size)
        opt = make_optimizer(m, cfg)
        gen = torch.Generator().manual_seed(seed)
        stats = [train_one_epoch(m, opt, x, y, cfg, gen) for _ in range(epochs)]
        separate.append((m, stats))

    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(create_model(model, norm=norm, input_size=size))
    stacked = StackedSeeds(models, optimizer, lr=0.001)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    stacked_stats = [stacked.train_one_epoch(x, y, gens, batch, 15.0) for _ in range(epochs)]

    for k, (m, stats) in enumerate(separate):
        for epoch in range(epochs):
            assert stacked_stats[epoch][k]["loss"] == pytest.approx(stats[epoch]["loss"], rel=1e-4, abs=1e-5)
            assert stacked_stats[epoch][k]["accuracy"] == stats[epoch]["accuracy"]
        mine = stacked.model(k).state_dict()
        for name, value in m.state_dict().items():  # weights, and BatchNorm's running statistics
            torch.testing.assert_close(mine[name], value, rtol=1e-3, atol=1e-4, msg=f"seed {seeds[k]}: {name}")
    # the seeds really differ (a test that stacked one seed three times would pass the above too)
    a, b = (stacked.model(k).state_dict() for k in (0, 1))
    assert not torch.equal(a["classifier.1.weight"], b["classifier.1.weight"])


def test_models_with_dropout_are_not_stacked():
    assert stackable(create_model("model3", input_size=32))
    assert not stackable(create_model("alexnet", input_size=64))
    with pytest.raises(ValueError, match="without Dropout"):
        StackedSeeds([create_model("vgg16", input_size=32)], "sgd", lr=0.001)


def test_a_stacked_grid_gives_the_rows_of_separate_runs(tmp_path, smfd_dir):
    from bench_helpers import grouped_split
    from benchmark.harness import BenchConfig, run_bench
    from conftest import build_store

    store = build_store(tmp_path / "data", smfd_dir, n_groups=40, max_side=16)
    grouped_split(store, "g", seed=0)
    store.close()
    common = dict(data_dir=tmp_path / "data", models=("model3",), protocol="quick", epochs=2, seeds=2, input_size=16,
                  device="cpu", precision="fp32")
    plain = run_bench(BenchConfig(out=tmp_path / "plain", **common))
    stacked = run_bench(BenchConfig(out=tmp_path / "stacked", stack_seeds=True, **common))
    assert not plain.failed and not stacked.failed
    key = lambda r: (r["seed"], r["epochs"], r["eval_set"])  # noqa: E731
    assert sorted(map(key, plain.rows)) == sorted(map(key, stacked.rows))
    by_key = {key(r): r for r in plain.rows}
    for r in stacked.rows:
        p = by_key[key(r)]
        assert r["stacked_seeds"] == 2 and "stacked_seeds" not in p
        assert r["loss"] == pytest.approx(p["loss"], rel=1e-3, abs=1e-4)
        assert r["val_loss"] == pytest.approx(p["val_loss"], rel=1e-3, abs=1e-4)
        assert r["accuracy"] == p["accuracy"] and r["val_accuracy"] == p["val_accuracy"]
    assert (tmp_path / "stacked" / "checkpoints" / "model3.pt").exists()


@pytest.mark.parametrize("model,norm,optimizer", [("model3", None, "adam"), ("model1", "bn", "sgd"), ("model1", "bcn_ws", "sgd")])
def test_stacked_seeds_in_bf16_train_like_separate_bf16_runs(model, norm, optimizer):
    """The stacked path under bf16 autocast (the CUDA default; the grid never stacks CPU bf16): BatchNorm and
    GroupNorm under vmap take bf16 activations with fp32 weights; the losses follow separate bf16 runs."""
    x, y = _data(n=96)
    separate = []
    for seed in (0, 1):
        cfg = RunConfig(model=model, norm=norm, seed=seed, epochs=1, eval_epochs=(1,), input_size=32,
                        optimizer=optimizer, batch_size=32, amp=True)
        torch.manual_seed(seed)
        m = create_model(model, norm=norm, input_size=32)
        stats = train_one_epoch(m, make_optimizer(m, cfg), x, y, cfg, torch.Generator().manual_seed(seed))
        assert stats["fp32_retries"] == 0  # else the separate run took an fp32 step the stacked one did not
        separate.append(stats["loss"])
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(create_model(model, norm=norm, input_size=32))
    stacked = StackedSeeds(models, optimizer, lr=0.001)
    got = stacked.train_one_epoch(x, y, [torch.Generator().manual_seed(s) for s in (0, 1)], 32, 15.0, amp=True)
    assert [r["loss"] for r in got] == pytest.approx(separate, rel=2e-2)
