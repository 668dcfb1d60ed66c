"""`lrfp bench` end to end on real (downscaled) SMFD: training beats chance, rows survive Ctrl-C, every bad
input named by the issue fails early with its message, and the other data sources work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

from bench_helpers import cli_run, grouped_split
from conftest import build_store, smfd_subset
from lrfp.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def precision_cache(tmp_path_factory):
    """The `--precision auto` probe caches its timings under XDG_CACHE_HOME: a folder of this module's, not ~/.cache."""
    from benchmark import precision

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(precision, "_busy", lambda: False)  # keep each probe for the module's later runs, loaded or not
        yield


@pytest.fixture(scope="module")
def bench_store(smfd_dir, tmp_path_factory) -> Path:
    """~270 real SMFD crops (100 whole groups) downscaled to 32 px, with a seeded grouped split."""
    root = tmp_path_factory.mktemp("bench")
    store = build_store(root / "data", smfd_dir, n_groups=100, max_side=32)
    counts = grouped_split(store, "grouped", seed=0)
    store.close()
    assert min(counts.values()) >= 20
    return root / "data"


cli = cli_run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_short_training_beats_chance_and_writes_every_output(bench_store, tmp_path):
    from benchmark.harness import BenchConfig, run_bench

    out = tmp_path / "out"
    result = run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3",), protocol="quick", epochs=8,
                                   device="cpu"))
    rows = read_jsonl(out / "results.jsonl")
    assert [r["epochs"] for r in rows] == [3, 5, 8] and {r["eval_set"] for r in rows} == {"test"}
    final = rows[-1]
    assert final["split"] == "grouped" and final["split_leaked_groups"] == 0 and final["n_test"] >= 20
    # Clearly better than chance on held-out groups: the whole 95% interval is above 50%.
    assert final["accuracy"] >= 0.75 and final["acc_ci_low"] > 0.5, final
    assert final["roc_auc"] > 0.8
    assert final["cm_with_mask_as_with_mask"] + final["cm_without_mask_as_without_mask"] == final["correct"]
    assert final["params"] > 0 and final["macs"] > 0 and final["train_images_per_s"] > 0
    assert final["device"] == "cpu" and final["torch_version"] and final["protocol"] == "quick"
    assert sum(final[f"n_face_{b}"] for b in ("<24", "24-32", "32-48", "48-64", "64-128", ">=128")) == final["n_test"]

    import csv

    with open(out / "results.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert [float(r["accuracy"]) for r in csv_rows] == pytest.approx([r["accuracy"] for r in rows])
    md = (out / "results.md").read_text()
    assert "| model3 | - | 8 | 1 |" in md and "98.40% / 0.1288 (@80)" in md and "99.10% / 0.0312 (@30)" in md
    assert "[97.3, 99.7]" in md  # the thesis interval THESIS.md works out for 99.1% on 320 images
    # the CLI's table shows the same thesis cells: both read them from the summary, computed once
    from rich.console import Console

    from lrfp.cli.tables import bench_summary_table

    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(bench_summary_table(result.summary, result.rows))
    table = console.export_text()
    assert "98.4%/0.13@80" in table and "99.1%/0.03@30" in table
    for png in ("learning_curves.png", "accuracy_vs_epochs.png", "accuracy_vs_face_size.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert len(read_jsonl(out / "history.jsonl")) == 8

    import torch

    from benchmark.registry import create_model

    ckpt = torch.load(out / "checkpoints" / "model3.pt", weights_only=False)
    assert ckpt["config"]["model"] == "model3" and ckpt["config"]["seed"] == 0 and ckpt["classes"] == ["with_mask", "without_mask"]
    assert 1 <= ckpt["epoch"] <= 8 and ckpt["split"] == "grouped"
    create_model("model3", input_size=ckpt["input_size"]).load_state_dict(ckpt["state_dict"])
    assert result.summary[-1]["accuracy"] == final["accuracy"]


def test_ctrl_c_keeps_the_finished_rows(bench_store, tmp_path):
    from benchmark.harness import BenchConfig, run_bench

    out = tmp_path / "out"

    from benchmark.events import RowWritten

    def on_event(event):
        if isinstance(event, RowWritten):  # the user presses Ctrl-C right after the first budget's row
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3",), protocol="quick", epochs=5,
                              device="cpu"), on_event=on_event)
    rows = read_jsonl(out / "results.jsonl")
    assert [(r["model"], r["epochs"]) for r in rows] == [("model3", 3)]
    assert (out / "results.csv").read_text().count("\n") == 2  # header + the row
    assert "INTERRUPTED" in (out / "results.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigint_to_the_command_keeps_rows_and_exits_130(bench_store, tmp_path, jobs):
    """Ctrl-C in a terminal: SIGINT to the whole process group (the command and its worker processes)."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrfp", "bench", "--model", "model3", "--model", "model1", "--protocol", "quick",
         "--epochs", "200", "--jobs", jobs, "--device", "cpu", "-d", str(bench_store), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not ((out / "results.jsonl").exists() and read_jsonl(out / "results.jsonl")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.time() - t0 < 15  # stops now, not after the running runs finish (200 epochs of either model take 30 s or more here)
    rows = read_jsonl(out / "results.jsonl")
    assert rows and not any(r["error"] for r in rows)
    # Rows that arrived before the Ctrl-C are whole evaluations, in budget order. A fast model can reach
    # its next budget (5, 8) between the first row and the signal; no run reached its end.
    by_config: dict[str, list[int]] = {}
    for r in rows:
        by_config.setdefault(r["config"], []).append(r["epochs"])
    for epochs in by_config.values():
        assert epochs == [3, 5, 8, 200][: len(epochs)] and 200 not in epochs, by_config
    assert "INTERRUPTED" in (out / "results.md").read_text()


# -- bad input -----------------------------------------------------------------------------------


def test_no_split_in_the_store(smfd_dir, tmp_path, capsys):
    build_store(tmp_path / "data", smfd_dir, n_groups=3, max_side=24).close()
    code, _, err = cli(capsys, "bench", "--model", "model3", "-d", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 2 and err.strip() == "Error: the store has no split yet: run `lrfp split` first"
    assert not (tmp_path / "o").exists()


def test_split_with_an_empty_class(smfd_dir, tmp_path, capsys):
    store = build_store(tmp_path / "data", smfd_dir, n_groups=10, max_side=24)
    rows = store.query("SELECT crop_id, label FROM current_labels ORDER BY crop_id")
    with_mask = [r["crop_id"] for r in rows if r["label"] == "with_mask"]
    without = [r["crop_id"] for r in rows if r["label"] == "without_mask"]
    # validation gets only with_mask crops
    assign = [(c, "train") for c in with_mask[:4] + without[:4]] + [(c, "test") for c in with_mask[4:6] + without[4:]]
    assign += [(c, "validation") for c in with_mask[6:]]
    store.save_split("lopsided", assign, seed=None, params={}, report={})
    store.close()
    code, _, err = cli(capsys, "bench", "--model", "model3", "-d", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 2  # the split chosen cannot be benchmarked: bad input, like an unknown --split
    assert err.strip() == ("Error: split 'lopsided': the validation subset has no without_mask crops (labeled crops per "
                           f"subset: train 4 with_mask + 4 without_mask, validation {len(with_mask) - 6} with_mask, test "
                           f"2 with_mask + {len(without) - 4} without_mask): a benchmark needs labeled crops of both "
                           "classes in train, validation and test; no other split of this store would work: make one "
                           "with `lrfp split --name NAME` (ratios that give every subset crops, e.g. the default "
                           "0.8,0.04,0.16)")


def test_unknown_model_name_lists_the_known(tmp_path, capsys):
    code, _, err = cli(capsys, "bench", "--model", "model3", "--model", "lenet", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2
    assert err.strip() == "Error: unknown model 'lenet'; known models: model1, model2, model3, vgg16, resnet18, alexnet"
    assert not (tmp_path / "o").exists()  # nothing was started


def test_input_size_a_model_cannot_take(tmp_path, capsys):
    code, _, err = cli(capsys, "bench", "--model", "alexnet", "--input-size", "48", "--out", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 2 and err.strip().startswith("Error: alexnet cannot take 48 px inputs: it needs at least 63 px")


def test_cuda_asked_for_but_absent(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = cli(capsys, "bench", "--all", "--device", "cuda", "--out", str(tmp_path / "o"))
    assert code == 1
    assert err.strip().startswith("Error: --device cuda asked for, but no CUDA device is available (torch ")
    assert err.strip().endswith("use --device cpu or --device auto")


def test_out_not_writable(bench_store, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = cli(capsys, "bench", "--model", "model3", "-d", str(bench_store), "--out", str(blocker / "results"),
                       "--device", "cpu")
    assert code == 2 and err.strip() == (f"Error: --out {blocker / 'results'}: {blocker} is a file, so no folder can "
                                         "be made under it; give another --out")


def test_offline_pretrained_weights_fail_before_training(bench_store, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, dst, *a, **k):  # the edge of the network: offline
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    out = tmp_path / "o"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--model", "resnet18", "-d", str(bench_store),
                       "--out", str(out), "--device", "cpu", "--protocol", "quick")
    assert code == 1
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert err.startswith("Error: resnet18 needs its ImageNet weights and they are not cached and cannot be downloaded")
    assert str(expected) in err and "--no-pretrained" in err
    assert not (out / "results.jsonl").exists()  # failed before the first run, not after model3


def test_no_pretrained_is_recorded(bench_store, tmp_path, capsys):
    out = tmp_path / "o"
    code, stdout, _ = cli(capsys, "bench", "--model", "resnet18", "--no-pretrained", "--epochs", "1", "--seeds", "1", "--input-size", "32",
                          "-d", str(bench_store), "--out", str(out), "--device", "cpu", "--precision", "fp32")
    assert code == 0 and "NO pretrained weights (resnet18)" in stdout
    rows = read_jsonl(out / "results.jsonl")
    assert len(rows) == 1 and rows[0]["pretrained"] is False and rows[0]["input_size"] == 32
    assert rows[0]["amp"] == "fp32" and rows[0]["channels_last"] is False
    md = (out / "results.md").read_text()
    assert "- pretrained ImageNet weights: NO for resnet18 (--no-pretrained" in md
    assert "after 1 epoch." in md and "after 1 epochs" not in md and "(here  epochs)" not in md
    assert "none matches these budgets" in md


def test_unknown_protocol_and_bad_numbers(tmp_path, capsys):
    code, _, err = cli(capsys, "bench", "--all", "--protocol", "fast", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2 and err == "Error: unknown protocol 'fast'; known: thesis, quick"
    code, _, err = cli(capsys, "bench", "--all", "--epochs", "0", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2 and err == "Error: --epochs must be at least 1, not 0"
    code, _, err = cli(capsys, "bench", "--all", "--precision", "fp16", "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2 and err == "Error: --precision must be auto, bf16 or fp32, not 'fp16'"


def test_bench_without_models_is_a_usage_error(capsys):
    code, _, err = cli(capsys, "bench")
    assert code == 2 and "--model NAME (repeatable) or --all" in err


# -- other data sources and concurrency -----------------------------------------------------------


def _publish_like(bench_store: Path, dest: Path) -> Path:
    """The Hub layout `lrfp publish` writes: data/<split>-*.parquet with image, label (ClassLabel), face_px."""
    import datasets

    from lrfp.store import open_store

    features = datasets.Features({
        "image": datasets.Image(), "label": datasets.ClassLabel(names=["with_mask", "without_mask"]),
        "face_px": datasets.Value("int32"),
    })
    with open_store(bench_store, create=False) as store:
        for subset in ("train", "validation", "test"):
            rows = store.split_crops("grouped", subset)
            ds = datasets.Dataset.from_dict({
                "image": [str(store.crop_file(r)) for r in rows], "label": [r["label"] for r in rows],
                "face_px": [min(r["width"], r["height"]) for r in rows],
            }, features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("string"),
                                           "face_px": datasets.Value("int32")}))
            ds = ds.cast(features)
            (dest / "data").mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(dest / "data" / f"{subset}-00000-of-00001.parquet"))
    return dest


def test_published_dataset_and_eval_on_a_class_folder(bench_store, smfd_dir, tmp_path, capsys):
    pytest.importorskip("datasets", reason="publishing needs `datasets` (lrfp's own install has it; the GPU machine's python has not)")
    published = _publish_like(bench_store, tmp_path / "lr-fp")
    other, _ = smfd_subset(smfd_dir, tmp_path / "other", n_groups=8, seed=7)
    out = tmp_path / "o"
    code, stdout, err = cli(capsys, "bench", "--model", "model3", "--epochs", "2", "--dataset", str(published),
                            "--eval-on", str(other), "--out", str(out), "--device", "cpu", "--protocol", "quick")
    assert code == 0, err
    rows = read_jsonl(out / "results.jsonl")
    assert [r["eval_set"] for r in rows] == ["test", "other"]
    assert rows[0]["data_kind"] == "dataset" and rows[0]["data"] == str(published)
    with_store = read_jsonl(out / "results.jsonl")[0]
    assert with_store["n_test"] == len(open_split(bench_store, "test"))
    assert rows[1]["n"] == sum(1 for p in other.rglob("*.jpg"))
    assert "Cross-dataset check" in (out / "results.md").read_text()


def open_split(data_dir: Path, subset: str) -> list:
    from lrfp.store import open_store

    with open_store(data_dir, create=False) as store:
        return [r for r in store.split_crops("grouped", subset) if r["label"] in ("with_mask", "without_mask")]


def test_concurrent_runs_in_worker_processes(bench_store, tmp_path):
    from benchmark.harness import BenchConfig, run_bench

    out = tmp_path / "o"
    result = run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3",), protocol="quick", epochs=2,
                                   seeds=2, jobs=2, device="cpu", threads=2))
    rows = read_jsonl(out / "results.jsonl")
    assert sorted(r["seed"] for r in rows) == [0, 1] and all(not r["error"] for r in rows)
    assert len(read_jsonl(out / "history.jsonl")) == 4
    s = result.summary[0]
    assert s["seeds"] == 2 and s["accuracy_sd"] >= 0
    ckpt = json.loads((out / "checkpoints" / "model3.json").read_text())
    best = max(h["val_accuracy"] for h in read_jsonl(out / "history.jsonl"))
    assert ckpt["val_accuracy"] == best  # the better seed's best epoch won


def test_missing_dataset_and_eval_folders_are_clear_errors(bench_store, tmp_path, capsys):
    code, _, err = cli(capsys, "bench", "--model", "model3", "--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 2 and err == (f"Error: no dataset folder at {tmp_path / 'nope'} (give a folder written by "
                                 "`lrfp publish`, or a Hub repo id owner/name)")
    code, _, err = cli(capsys, "bench", "--model", "model3", "-d", str(bench_store), "--eval-on", str(tmp_path / "gone"),
                       "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2 and err.startswith(f"Error: --eval-on {tmp_path / 'gone'}: no such folder")
    a_file = tmp_path / "list.txt"
    a_file.write_text("x")
    code, _, err = cli(capsys, "bench", "--model", "model3", "-d", str(bench_store), "--eval-on", str(a_file),
                       "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 2 and err.startswith(f"Error: --eval-on {a_file} is a file, not a folder")


def test_the_gpu_settings_train_too_bf16_autocast_and_channels_last_on_cpu(bench_store):
    """No GPU here: the CUDA path's numerics (bf16 autocast, channels-last, BCN + WS) run on the CPU instead."""
    from benchmark.data import load_store_split
    from benchmark.engine import RunConfig, run

    data = load_store_split(bench_store, "grouped")
    result = run(RunConfig(model="model1", norm="bcn_ws", seed=0, epochs=8, eval_epochs=(8,), input_size=32,
                           optimizer="sgd", device="cpu", amp=True, channels_last=True), data)
    row = result.rows[0]
    assert row["amp"] == "bf16" and row["channels_last"] is True
    assert row["accuracy"] >= 0.7 and row["acc_ci_low"] > 0.5, row
    assert row["fp32_retries"] == sum(h["fp32_retries"] for h in result.history)


def test_cpu_bf16_steps_with_non_finite_gradients_are_redone_in_fp32():
    """oneDNN (torch 2.14.1) can return NaN bf16 weight gradients on a CPU: such a step is recomputed in fp32
    before the optimizer sees it, and counted."""
    import torch
    from torch import nn

    from benchmark.engine import RunConfig, train_one_epoch

    class NonFiniteUnderAutocast(nn.Module):
        """A tiny net whose gradients are NaN exactly when it runs under CPU autocast."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3 * 8 * 8, 2)
            self.calls = {"bf16": 0, "fp32": 0}

        def forward(self, x):
            amp = torch.is_autocast_enabled("cpu")
            self.calls["bf16" if amp else "fp32"] += 1
            out = self.fc(x.flatten(1))
            return out * torch.sqrt(torch.tensor(-1.0)) if amp else out

    torch.manual_seed(0)
    model = NonFiniteUnderAutocast()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8)
    y = torch.randint(0, 2, (100,))
    cfg = RunConfig(model="m", norm=None, seed=0, epochs=1, eval_epochs=(1,), input_size=8, optimizer="sgd",
                    device="cpu", amp=True, batch_size=32)
    stats = train_one_epoch(model, opt, x, y, cfg, torch.Generator().manual_seed(0))
    # batches of 32, 32, 32 and 4: each one in bf16, then redone in fp32
    assert stats["fp32_retries"] == 4
    assert model.calls == {"bf16": 4, "fp32": 4}
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert stats["images"] == 100 and stats["loss"] == stats["loss"]  # finite, not NaN


@pytest.mark.parametrize("stack_seeds", [False, True], ids=["one-at-a-time", "stacked"])
def test_a_failing_run_is_a_row_with_its_error_and_the_grid_goes_on(bench_store, tmp_path, stack_seeds):
    """Stacked seeds fail together: one error row for each seed, and the next config still trains."""
    import torch

    from benchmark import registry
    from benchmark.harness import BenchConfig, run_bench

    class Diverges(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            raise FloatingPointError("loss is NaN")  # what a run that blows up looks like to the harness

    @registry.register_model("diverges", input_size=16, quick_input_size=16, min_input_size=1)
    def diverges(**kw):
        return Diverges()

    try:
        result = run_bench(BenchConfig(data_dir=bench_store, out=tmp_path / "o", models=("diverges", "model3"),
                                       protocol="quick", epochs=1, device="cpu", seeds=2, stack_seeds=stack_seeds,
                                       precision="fp32"))
    finally:
        registry._REGISTRY.pop("diverges")
    assert sorted((r["config"], r["seed"], bool(r.get("error"))) for r in result.rows) == [
        ("diverges", 0, True), ("diverges", 1, True), ("model3", 0, False), ("model3", 1, False)]
    assert {r["error"] for r in result.rows if r.get("error")} == {"FloatingPointError: loss is NaN"}
    md = (tmp_path / "o" / "results.md").read_text()
    assert "## Runs that failed" in md
    assert "- diverges seed 0: FloatingPointError: loss is NaN" in md and "- diverges seed 1: FloatingPointError" in md


def test_a_second_bench_into_the_same_out_keeps_the_first(bench_store, tmp_path, capsys):
    """A finished benchmark and another of other settings (--epochs) into the same --out: the first is moved aside
    whole. (One that only adds runs, e.g. more --seeds, keeps the finished ones: tests/test_bench_resume.py.)"""
    out = tmp_path / "o"
    args = ["bench", "--model", "model3", "--protocol", "quick", "-d", str(bench_store), "--out", str(out), "--device", "cpu"]
    assert cli(capsys, *args, "--epochs", "1")[0] == 0
    first = (out / "results.jsonl").read_text()
    code, stdout, _ = cli(capsys, *args, "--epochs", "2")
    assert code == 0 and "The earlier results there were moved to" in stdout
    (previous,) = out.glob("previous-*")
    assert (previous / "results.jsonl").read_text() == first and (previous / "checkpoints" / "model3.pt").exists()
    assert sorted((r["seed"], r["epochs"]) for r in read_jsonl(out / "results.jsonl")) == [(0, 2)]


def test_a_hub_dataset_that_cannot_be_reached_is_a_clear_error(tmp_path, capsys, monkeypatch):
    # The edge of the network: the Hub client in offline mode, as on a machine without internet.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytest.importorskip("datasets", reason="a Hub dataset needs `datasets` (lrfp's own install has it; the GPU machine's python has not)")
    import datasets  # noqa: F401  (reads the setting at import; set it for this process too)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    code, _, err = cli(capsys, "bench", "--model", "model3", "--dataset", "someone/lr-fp", "--out", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 1 and err.startswith("Error: cannot load dataset 'someone/lr-fp': ")


def test_list_prints_the_registry(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--list"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    names = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│") and line.split("│")[1].strip()]
    assert names[:6] == ["model1", "model2", "model3", "vgg16", "resnet18", "alexnet"]
    assert "224 / 64 / 63" in out  # alexnet: thesis / quick / minimum input


def test_list_piped_into_a_narrow_terminal_hides_nothing():
    proc = subprocess.run([sys.executable, "-m", "lrfp", "bench", "--list"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "40"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in proc.stdout.splitlines() if line.startswith("│")]
    alexnet = next(r for r in rows if r[0] == "alexnet")
    assert alexnet[:5] == ["alexnet", "-", "224 / 64 / 63", "sgd", "ImageNet"]
    assert alexnet[5].startswith("torchvision AlexNet, ImageNet weights, last layer -> 2 outputs")


def test_bench_on_the_split_lrfp_split_writes(smfd_dir, tmp_path, capsys):
    """The real pipeline: import -> `lrfp split` -> `lrfp bench` on its (last) split."""
    pytest.importorskip("imagehash", reason="`lrfp split` needs imagehash (lrfp's own install has it; the GPU machine's python has not)")
    build_store(tmp_path / "data", smfd_dir, n_groups=60, max_side=32).close()
    assert cli(capsys, "split", "-d", str(tmp_path / "data"))[0] == 0
    code, _, err = cli(capsys, "bench", "--model", "model3", "--protocol", "quick", "--epochs", "1", "-d",
                       str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--device", "cpu")
    assert code == 0, err
    (row,) = read_jsonl(tmp_path / "o" / "results.jsonl")
    assert row["split"] == "default" and row["split_leaked_groups"] == 0 and row["split_near_duplicate_pairs"] == 0
    assert row["n_train"] + row["n_val"] + row["n_test"] == open_split_all(tmp_path / "data")


def open_split_all(data_dir: Path) -> int:
    from lrfp.store import open_store

    with open_store(data_dir, create=False) as store:
        return len(store.split_crops(store.resolve_split()))


@pytest.mark.parametrize("device,precision,bf16", [
    ("cpu", "auto", None), ("cuda", "auto", True), ("cuda:1", "auto", True), ("cpu", "fp32", False), ("cpu", "bf16", True),
])
def test_auto_precision_is_bf16_on_cuda_and_probed_on_cpus(device, precision, bf16):
    from benchmark import harness

    assert harness.resolve_precision(precision, device) is bf16


def test_bf16_is_chosen_only_when_clearly_faster():
    from benchmark.precision import choose_bf16

    assert choose_bf16(fp32_ms=100.0, bf16_ms=90.0) is True  # 1.11x
    assert choose_bf16(fp32_ms=100.0, bf16_ms=95.0) is False  # 1.05x: not worth bf16's rounding
    assert choose_bf16(fp32_ms=100.0, bf16_ms=180.0) is False  # emulated bf16


def test_the_precision_probe_times_both_and_is_cached(monkeypatch, tmp_path):
    from benchmark import precision
    from benchmark.engine import RunConfig

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "_busy", lambda: False)  # a quiet machine (this test must not depend on the load)
    cfg = RunConfig(model="model3", norm=None, seed=0, epochs=1, eval_epochs=(1,), input_size=16, optimizer="adam",
                    batch_size=4, device="cpu")
    first = precision.probe(cfg)
    assert not first.cached and first.fp32_ms > 0 and first.bf16_ms > 0
    cache = json.loads((tmp_path / "cache" / "lrfp" / "precision.json").read_text())
    (entries,) = cache.values()
    assert entries == {"model3|16px|batch 4|adam": {"fp32_ms": first.fp32_ms, "bf16_ms": first.bf16_ms}}
    again = precision.probe(cfg)
    assert again.cached and (again.fp32_ms, again.bf16_ms) == (first.fp32_ms, first.bf16_ms)

    monkeypatch.setattr(precision, "_busy", lambda: True)  # a probe on a loaded machine is not kept
    other = RunConfig(**{**cfg.__dict__, "batch_size": 2})
    precision.probe(other)
    assert precision.probe(other).cached is False


# -- issue 11: bad input exits 2 before anything is made; failed runs make the exit non-zero ------------


@pytest.mark.parametrize("args,message", [
    (("--batch-size", "0"), "--batch-size must be at least 2, not 0"),
    (("--batch-size", "-1"), "--batch-size must be at least 2, not -1"),
    (("--batch-size", "1"), "--batch-size must be at least 2, not 1"),
    (("--input-size", "0"), "--input-size must be at least 1, not 0"),
    (("--jobs", "0"), "--jobs must be at least 1, not 0"),
    (("--seeds", "0"), "--seeds must be at least 1, not 0"),
    (("--threads", "0"), "--threads must be at least 1, not 0"),
    (("--device", "tpu"), "--device must be auto, cpu, cuda or cuda:N, not 'tpu'"),
    (("--device", "cuda:x"), "--device must be auto, cpu, cuda or cuda:N, not 'cuda:x'"),
    (("--compile", "max"), "--compile must be off, default, reduce-overhead, not 'max'"),
    (("--stack-seeds", "--jobs", "2"), "--stack-seeds trains a config's seeds in one process; it cannot be combined with --jobs 2: drop --jobs (or give --jobs 1), or drop --stack-seeds to train runs in parallel processes"),
    (("--dataset", "owner/name", "--split", "s1"), "--split picks a split of the store; it cannot be combined with --dataset (a published dataset brings its own split): drop --split, or drop --dataset"),
])
def test_options_that_cannot_work_exit_2_before_anything_is_made(tmp_path, capsys, args, message):
    out = tmp_path / "o"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--out", str(out), "-d", str(tmp_path / "no-store"), *args)
    assert (code, err) == (2, f"Error: {message}")
    assert not out.exists() and not (tmp_path / "no-store").exists()


def _diverging_model():
    """Register a model whose forward raises, as a run that blows up looks to the harness; returns its remover."""
    import torch

    from benchmark import registry

    class Diverges(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            raise FloatingPointError("loss is NaN")

    registry.register_model("diverges", input_size=16, quick_input_size=16, min_input_size=1)(lambda **kw: Diverges())
    return lambda: registry._REGISTRY.pop("diverges")


def test_a_bench_with_a_failed_run_exits_1_after_the_table(bench_store, tmp_path, capsys):
    remove = _diverging_model()
    try:
        code, stdout, err = cli(capsys, "bench", "--model", "diverges", "--protocol", "quick", "--epochs", "1",
                                "-d", str(bench_store), "--out", str(tmp_path / "o"), "--device", "cpu")
    finally:
        remove()
    assert code == 1
    assert "failed" in stdout and "FloatingPointError" in stdout  # the table came first
    assert err == f"Error: 1 of 1 result rows are failed runs (see the table and {tmp_path / 'o' / 'results.md'})"
    assert read_jsonl(tmp_path / "o" / "results.jsonl")[0]["error"] == "FloatingPointError: loss is NaN"


def test_a_model3_only_bench_records_no_pretrained_weights(bench_store, tmp_path):
    from benchmark.harness import BenchConfig, run_bench

    run_bench(BenchConfig(data_dir=bench_store, out=tmp_path / "o", models=("model3",), protocol="quick", epochs=1,
                          device="cpu", precision="fp32"))
    md = (tmp_path / "o" / "results.md").read_text()
    assert "- pretrained ImageNet weights: none (the models run have none" in md
    assert "evaluated on test after 1 epoch." in md and "after 1 epochs" not in md
    assert "- this benchmark: 1 epoch evaluated at 1, 1 seed per config" in md
    assert "(here  epochs)" not in md and "none matches these budgets" in md


def test_the_cli_header_is_whole_on_any_terminal_width_and_time_zone(bench_store, tmp_path):
    """Piped, COLUMNS=40, another time zone, and without datasets/mediapipe/imagehash (a GPU machine lacks them)."""
    from benchmark.harness import device_name

    env = {**os.environ, "COLUMNS": "40", "TZ": "Pacific/Kiritimati"}
    block = "import sys; sys.modules.update(dict.fromkeys(['datasets', 'mediapipe', 'imagehash'])); " \
            "from lrfp.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", block, "bench", "--model", "resnet18", "--no-pretrained", "--epochs", "1", "--seeds", "1",
         "--input-size", "32", "--precision", "fp32", "--device", "cpu", "-d", str(bench_store), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    header = (f"lrfp bench: protocol thesis, 1 seed per config, {device_name('cpu')}, NO pretrained weights (resnet18)")
    assert header in proc.stdout.splitlines()


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG that declares width x height (what a decompression bomb looks like before decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def test_a_decompression_bomb_in_eval_on_is_left_out_and_named(bench_store, tmp_path, capsys):
    """As a damaged file (test_bench_consistency): never decoded, named in the terminal and results.md."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "street"
    rng = np.random.default_rng(0)
    for label in ("with_mask", "without_mask"):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / label / f"{i}.png")
    bomb = folder / "with_mask" / "huge.png"
    _png_header_only(bomb, 20000, 20000)
    out = tmp_path / "o"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--epochs", "1", "--protocol", "quick", "--device", "cpu",
                       "-d", str(bench_store), "--eval-on", str(folder), "--out", str(out))
    assert code == 0, err
    said = " ".join(err.split())
    assert f"--eval-on {folder}: 1 unreadable image left out (with_mask/huge.png: image too large to open (" in said
    assert "the other 4 are evaluated" in said
    assert "with_mask/huge.png" in (out / "results.md").read_text()


def test_a_crop_missing_under_the_store_is_named(smfd_dir, tmp_path, capsys):
    from lrfp.store import open_store

    store = build_store(tmp_path / "data", smfd_dir, n_groups=30, max_side=32)
    grouped_split(store, "g", seed=0)
    store.close()
    with open_store(tmp_path / "data", create=False) as store:
        row = store.split_crops("g", "test")[0]
        path = store.root / row["path"]
    path.unlink()
    code, _, err = cli(capsys, "bench", "--model", "model3", "--epochs", "1", "--protocol", "quick", "--device", "cpu",
                       "-d", str(tmp_path / "data"), "--out", str(tmp_path / "o"))
    assert code == 1
    assert err.startswith(f"Error: crop {row['id']} ({row['path']}): file {path} is missing under the store; ")


@pytest.mark.gpu
def test_compiled_training_with_cuda_graphs_on_a_gpu(bench_store, tmp_path):
    """Only where a GPU is present (not in the default run): --compile reduce-overhead trains and checkpoints."""
    import torch

    from benchmark.harness import BenchConfig, run_bench

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = run_bench(BenchConfig(data_dir=bench_store, out=tmp_path / "o", models=("model3",), protocol="quick",
                                   epochs=3, device="cuda", compile="reduce-overhead", jobs=1))
    assert not result.failed and result.rows[-1]["compile"] == "reduce-overhead"
    ckpt = torch.load(tmp_path / "o" / "checkpoints" / "model3.pt", map_location="cpu")
    assert not any(k.startswith("_orig_mod.") for k in ckpt["state_dict"])


def test_an_annotations_only_dataset_says_it_has_no_pixels(bench_store, tmp_path, capsys):
    """A new user benched a folder written by `lrfp publish --annotations-only` and got a column list (exit 1)."""
    pytest.importorskip("datasets", reason="publishing needs `datasets` (lrfp's own install has it; the GPU machine's python has not)")
    published = tmp_path / "ann"
    code, _, err = cli(capsys, "publish", "--annotations-only", "--split", "grouped", "-d", str(bench_store),
                       "--out", str(published))
    assert code == 0, err
    for option, extra in (("--dataset", ()), ("--eval-on", ("-d", str(bench_store)))):
        code, _, err = cli(capsys, "bench", "--model", "model3", option, str(published), *extra,
                           "--out", str(tmp_path / "o"), "--device", "cpu", "--protocol", "quick")
        assert code == 2, (option, err)
        assert err.startswith(f"Error: {option} {published} was published with --annotations-only"), err
        assert "no pixels" in err and "without --annotations-only" in err
    assert not (tmp_path / "o" / "results.jsonl").exists()


def _imported_folder(data_dir: Path) -> tuple[Path, list[str]]:
    """The folder the store imported, and the files of it that became crops."""
    from lrfp.store import open_store

    with open_store(data_dir, create=False) as store:
        rels = [r["relpath"] for r in store.query(
            "SELECT relpath FROM imported_files WHERE crop_id IS NOT NULL ORDER BY relpath")]
        return Path(store.source("smfd")["path"]), rels


def test_eval_on_the_imported_folder_itself_is_refused(bench_store, tmp_path, capsys):
    """A new user evaluated on the very folder the store was built from: a "cross-dataset" 65% with no word.
    The store keeps 32 px crops, so the files are recognised by their bytes (imported_files.file_sha256)."""
    folder, rels = _imported_folder(bench_store)
    n = sum(1 for p in folder.rglob("*.jpg"))
    code, _, err = cli(capsys, "bench", "--model", "model3", "--epochs", "1", "-d", str(bench_store), "--split", "grouped",
                       "--eval-on", str(folder), "--out", str(tmp_path / "o"), "--device", "cpu", "--protocol", "quick")
    assert code == 2, err
    assert err.startswith(f"Error: --eval-on {folder}: all {n} of its images are in the benchmarked data ("), err
    import re

    parts = re.match(r"[^(]*\(([^)]*)\)", err).group(1)  # "a train, b validation, c test": parts of the total
    assert sum(int(p.split()[0]) for p in parts.split(", ")) == n, parts
    assert "not imported into this store" in err
    assert not (tmp_path / "o" / "results.jsonl").exists()


def test_eval_on_partly_made_of_training_images_is_warned_about(bench_store, smfd_dir, tmp_path, capsys):
    import hashlib
    import shutil

    folder, rels = _imported_folder(bench_store)
    stored = {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.jpg")}
    names = {r.split("/")[-1] for r in rels}
    evalset = tmp_path / "mixed"
    copied = 0
    for cls in ("with_mask", "without_mask"):
        (evalset / cls).mkdir(parents=True)
        for rel in [r for r in rels if r.startswith(cls + "/")][:5]:  # 5 imported files per class, copied
            shutil.copy(folder / rel, evalset / rel)
            copied += 1
        fresh = [p for p in sorted((smfd_dir / cls).glob("*.jpg"))
                 if p.name not in names and hashlib.sha256(p.read_bytes()).hexdigest() not in stored]
        for p in fresh[:13]:
            shutil.copy(p, evalset / cls / p.name)
        for rel in [r for r in rels if r.startswith(cls + "/")][-2:]:  # 2 resized PNG copies: not exact, near
            from PIL import Image

            with Image.open(folder / rel) as im:
                big = im.convert("RGB").resize((im.width * 3 // 2, im.height * 3 // 2))
            big.save(evalset / cls / f"resized-{rel.split('/')[-1]}.png")
    out = tmp_path / "o"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--epochs", "1", "-d", str(bench_store), "--split", "grouped",
                       "--eval-on", str(evalset), "--out", str(out), "--device", "cpu", "--protocol", "quick")
    assert code == 0, err
    said = " ".join(err.split())
    md = " ".join((out / "results.md").read_text().split())
    assert "not a clean cross-dataset result" in md
    import re

    for text, name in ((said, f"Warning: --eval-on {evalset}"), (md, "**Warning: --eval-on mixed")):
        m = re.search(re.escape(name) + r": (\d+) of its 40 images are in the benchmarked data: (\d+) exact copies "
                      r"\(([^)]*)\) and (\d+) near-duplicates \(dHash within 4 bits, which can include look-alikes: "
                      r"([^)]*)\)", text)
        assert m, text
        total, exact, exact_parts, near, near_parts = m.groups()
        assert int(exact) == copied and int(total) == copied + int(near)
        assert int(near) >= 4  # the 4 resized copies (a fresh file may be a look-alike too)
        for count, parts in ((exact, exact_parts), (near, near_parts)):  # each split sums to its count
            assert sum(int(p.split()[0]) for p in parts.split(", ")) == int(count), parts


def _row(config: str, epochs: int, seed: int, correct: int = 40, eval_set: str = "test", **extra) -> dict:
    """A finished run's result row with the keys the report reads (48 test images)."""
    model, _, norm = config.partition("-")
    return {"eval_set": eval_set, "model": model, "norm": norm, "config": config, "epochs": epochs, "seed": seed,
            "n": 48, "correct": correct, "accuracy": correct / 48, "loss": 0.3, "balanced_accuracy": 0.8,
            "roc_auc": 0.9, "n_face_32-48": 48, "acc_face_32-48": correct / 48, **extra}


def _table_text(summary: list[dict], rows: list[dict]) -> str:
    from rich.console import Console

    from lrfp.cli.tables import bench_summary_table

    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(bench_summary_table(summary, rows))
    return console.export_text()


def test_tables_are_in_the_plan_order_whatever_order_runs_finished(tmp_path):
    """Tester's report: with --jobs 2 (and in resumed benchmarks) the terminal table and results.md came in the
    order runs finished (model1-bn 3, model3 3, model1-bn 5, ...). The plan of `--model model3 --model model1`:
    model3, then model1's norms; each config's budgets ascending, then seeds. results.jsonl stays an append log."""
    import csv

    from benchmark.report import ResultsWriter, render_markdown, summarize

    plan = ["model3", "model1-bn", "model1-bcn"]
    finished = [_row("model1-bn", 3, 0), _row("model3", 3, 1), _row("model3", 3, 0), _row("model1-bn", 5, 0),
                _row("model3", 5, 1), _row("model1-bcn", 3, 0), _row("model3", 5, 0), _row("model1-bcn", 5, 0),
                _row("model1-bn", 3, 1), _row("model1-bn", 5, 1),
                {**_row("model1-bcn", 5, 1), "error": "FloatingPointError: loss is NaN"}]
    expected = [(c, e, s) for c in plan for e in (3, 5) for s in (0, 1) if (c, e, s) != ("model1-bcn", 3, 1)]
    for out, kept in ((tmp_path / "new", []), (tmp_path / "resumed", finished[:5])):  # a resume keeps rows first
        out.mkdir()
        writer = ResultsWriter(out, kept, configs=plan)
        for r in finished[len(kept):]:
            writer.add_row(r)
        with open(out / "results.csv") as fh:
            assert [(r["config"], int(r["epochs"]), int(r["seed"])) for r in csv.DictReader(fh)] == expected
        log = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert [(r["config"], r["epochs"], r["seed"]) for r in log] == [(r["config"], r["epochs"], r["seed"]) for r in finished]

        summary = summarize(writer.rows)
        cells = [(c, e) for c in plan for e in (3, 5)]
        assert [(s["config"], s["epochs"]) for s in summary] == cells
        md = render_markdown(writer.rows, {"protocol": "quick", "run_epochs": 5, "run_budgets": [3, 5], "run_seeds": 2})
        lines = md.splitlines()
        start = lines.index(next(line for line in lines if line.startswith("| model | norm | epochs |"))) + 2
        table = [tuple(line.split(" | ")[:3]) for line in lines[start:start + len(cells) + 1]]
        norm = {"model3": "-", "model1-bn": "BatchNorm", "model1-bcn": "BatchGroup (BCN)"}
        assert table == [(f"| {c.split('-')[0]}", norm[c], str(e)) for c, e in cells] + [("",)]
        faces = [line.split(" | ")[0] for line in lines if line.startswith("| model") and "(n=48)" in line]
        assert faces == [f"| {c}" for c in plan]  # the face-size table: each config after its last budget
        terminal = [line.split()[:2] for line in _table_text(summary, writer.rows).splitlines()
                    if line.split()[:1] and line.split()[0] in plan]
        assert terminal == [[c, str(e)] for c, e in cells] + [["model1-bcn", "-"]]  # then the failed run


@pytest.mark.slow
def test_the_plan_order_holds_with_concurrent_runs(bench_store, tmp_path):
    """The same through run_bench with --jobs 2: the harness hands the plan's order to the results."""
    import csv

    from benchmark.harness import BenchConfig, run_bench

    out = tmp_path / "o"
    result = run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3", "model1"), protocol="quick",
                                   epochs=4, jobs=2, device="cpu", threads=1, precision="fp32", input_size=32))
    plan = [(c, e) for c in ("model3", "model1-bn", "model1-bcn", "model1-bcn_ws") for e in (3, 4)]
    assert [(s["config"], s["epochs"]) for s in result.summary] == plan
    with open(out / "results.csv") as fh:
        assert [(r["config"], int(r["epochs"])) for r in csv.DictReader(fh)] == plan
    md = (out / "results.md").read_text()
    assert md.index("| model3 | - | 3 |") < md.index("| model3 | - | 4 |") < md.index("| model1 | BatchNorm | 3 |")


def test_results_md_after_an_interrupt_before_any_run_finished(bench_store, tmp_path):
    """Tester's report: Ctrl-C before the first row left "evaluated on test after  epochs." and "after None epochs"
    in results.md. It must say plainly that no run finished, with the plan's budgets, and no empty tables."""
    from benchmark.events import EpochDone
    from benchmark.harness import BenchConfig, run_bench

    def on_event(event):
        if isinstance(event, EpochDone):  # Ctrl-C during the first run, before its first budget
            raise KeyboardInterrupt

    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        run_bench(BenchConfig(data_dir=bench_store, out=out, models=("model3", "model1"), protocol="quick", epochs=6,
                              seeds=2, device="cpu", precision="fp32"), on_event=on_event)
    md = (out / "results.md").read_text()
    assert "**No run finished: it was interrupted before its first run ended; rerun the same command into this " \
           "--out to train them.**" in " ".join(md.split())
    assert "- this benchmark: 6 epochs evaluated at 3, 5, 6, 2 seeds per config" in md
    assert "INTERRUPTED before any run finished" in md
    for broken in ("after None", "after  epochs", "after -", "| model |", "face size"):
        assert broken not in md, broken


def test_a_bench_where_every_run_failed_says_no_run_finished(bench_store, tmp_path, capsys):
    """Tester's report: the header said "0 seed(s)" when every run failed. It says that no run finished; the table
    and results.md list the failed runs."""
    from benchmark.harness import device_name

    remove = _diverging_model()
    try:
        code, stdout, err = cli(capsys, "bench", "--model", "diverges", "--protocol", "quick", "--epochs", "1", "--seeds",
                                "2", "--precision", "fp32", "-d", str(bench_store), "--out", str(tmp_path / "o"),
                                "--device", "cpu")
    finally:
        remove()
    assert code == 1, err
    assert f"lrfp bench: protocol quick, no run finished, {device_name('cpu')}" in stdout.splitlines()
    assert "0 seed" not in stdout
    lines = [line.split() for line in stdout.splitlines()]
    assert [w[:3] for w in lines if w[:1] == ["diverges"] and w[1:2] != ["seed"]] == [["diverges", "-", "failed"]] * 2
    # and under the table, each failure in full
    assert "diverges seed 0: FloatingPointError: loss is NaN" in stdout and "diverges seed 1: FloatingPointError" in stdout
    md = (tmp_path / "o" / "results.md").read_text()
    assert "**No run finished: every run failed (the errors are below).**" in md
    assert "- diverges seed 0: FloatingPointError: loss is NaN\n- diverges seed 1: FloatingPointError: loss is NaN" in md
    assert "| model |" not in md and "face size" not in md


def test_the_header_names_the_seeds_planned_and_finished():
    """One failed seed of three: the header says how many seeds finished, not a bare list of counts."""
    from lrfp.cli.tables import bench_header

    meta = {"protocol": "thesis", "device_name": "cpu", "run_seeds": 3}
    three = {"eval_set": "test", "seeds": 3}
    assert bench_header(meta, [three]) == "lrfp bench: protocol thesis, 3 seeds per config, cpu"
    assert bench_header({**meta, "run_seeds": 1}, [{**three, "seeds": 1}]) == \
        "lrfp bench: protocol thesis, 1 seed per config, cpu"
    assert bench_header(meta, [three, {**three, "seeds": 2}]) == \
        "lrfp bench: protocol thesis, 3 seeds per config planned, 2-3 finished, cpu"
    assert bench_header(meta, []) == "lrfp bench: protocol thesis, no run finished, cpu"


def test_the_eval_on_warning_gives_the_total_and_parts_that_sum_to_it():
    """Tester's report: with no exact copy the warning began "7 more are near-duplicates" (more than what?), and
    with --dataset pub it said "299 more ... (241 train, 12 validation, 50 test)", parts summing to 303: 4 eval
    images were near-duplicates of images in two subsets and were counted in each."""
    from benchmark.overlap import overlap_warning

    near_only = {"n": 40, "exact_any": 0, "exact": {"train": 0, "validation": 0, "test": 0}, "exact_several": 0,
                 "near_any": 7, "near": {"train": 5, "validation": 0, "test": 2}, "near_several": 0, "dhash_bits": 4}
    said = overlap_warning("DIR", near_only)
    assert said.startswith("--eval-on DIR: 7 of its 40 images are in the benchmarked data: 7 near-duplicates (dHash "
                           "within 4 bits, which can include look-alikes: 5 train, 2 test). "), said
    assert "more" not in said
    both = {**near_only, "n": 300, "exact_any": 1, "exact": {"train": 1, "validation": 0, "test": 0},
            "near_any": 299, "near": {"train": 237, "validation": 12, "test": 46}, "near_several": 4}
    assert overlap_warning("/tmp/img", both).startswith(
        "--eval-on /tmp/img: all 300 of its images are in the benchmarked data: 1 exact copy (1 train) and 299 "
        "near-duplicates (dHash within 4 bits, which can include look-alikes: 237 train, 12 validation, 46 test, "
        "4 in several subsets). ")


def test_an_eval_image_near_images_in_two_subsets_is_counted_once(smfd_dir):
    """eval_overlap's per-subset counts sum to its totals: an eval image that is a near-duplicate of a train image
    and of a test image (the data holds the face twice) is counted once, under "several"."""
    import numpy as np
    from PIL import Image

    from benchmark.data import BenchData, Subset
    from benchmark.overlap import eval_overlap

    files = sorted((smfd_dir / "with_mask").glob("*.jpg"))[:4]
    a, b, c, d = (np.asarray(Image.open(f).convert("RGB").resize((48, 48))) for f in files)

    def subset(images):
        return Subset(images, np.zeros(len(images), dtype=np.int64), np.full(len(images), 48), [str(i) for i in range(len(images))])

    data = BenchData("s", "folder", {"train": subset([a, b]), "validation": subset([c]), "test": subset([a[:, ::-1].copy()])})
    resized = np.asarray(Image.fromarray(a).resize((64, 64)))  # near a (train) and its mirror (test)
    info = eval_overlap(data, subset([resized, b, d]))
    assert info["n"] == 3 and info["exact_any"] == 1 and info["exact"] == {"train": 1, "validation": 0, "test": 0}
    assert info["near_any"] == 1 and info["near_several"] == 1 and sum(info["near"].values()) == 0


def test_eval_on_lists_broken_links_fifos_and_folders_named_like_images(tmp_path):
    """Tester's bug 16: --eval-on left these out silently; they are listed with the unreadable files, as import does."""
    import numpy as np
    from PIL import Image

    from benchmark.data import load_image_folder

    folder = tmp_path / "street"
    for label in ("with_mask", "without_mask"):
        (folder / label).mkdir(parents=True)
        Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(folder / label / "0.png")
    (folder / "with_mask" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(folder / "without_mask" / "pipe.jpg")
    (folder / "without_mask" / "dir.jpg").mkdir()
    sub = load_image_folder(folder)
    assert len(sub) == 2
    assert sorted(sub.skipped) == [
        ("with_mask/gone.jpg", f"broken symbolic link (its target {tmp_path / 'nowhere.jpg'} does not exist)"),
        ("without_mask/dir.jpg", "a folder, not an image file"),
        ("without_mask/pipe.jpg", "not a regular file (a FIFO, a socket or a device)"),
    ]


def test_a_refused_eval_on_with_a_skipped_file_does_not_point_to_results_md(bench_store, tmp_path, capsys):
    """Tester's bug 16: the Note said "the list is in results.md", then the overlap error exited without one."""
    import shutil

    folder, rels = _imported_folder(bench_store)
    copy = tmp_path / "copy"
    for rel in rels:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / rel, copy / rel)
    (copy / "with_mask" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # left out with a Note
    with pytest.raises(SystemExit) as e:
        main(["bench", "--model", "model3", "--epochs", "1", "-d", str(bench_store), "--split", "grouped",
              "--eval-on", str(copy), "--out", str(tmp_path / "o"), "--device", "cpu", "--protocol", "quick"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"Error: --eval-on {copy}: all " in err, err
    assert "results.md" not in err and not (tmp_path / "o" / "results.md").exists()
