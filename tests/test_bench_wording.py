"""The second tester's report, bug F: messages of `lrfp bench` that were cut, wrong or gave no way on.

Each test asserts the text a user reads; none depends on the terminal's width (piped output is never wrapped, and
the lines checked here are printed with soft_wrap).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from bench_helpers import cli_run


cli = cli_run


@pytest.fixture
def unwritable(tmp_path):
    """A folder nobody can create anything in: chmod 555, or for root (who ignores permission bits) sysfs."""
    if os.geteuid() == 0:
        yield Path("/sys/kernel")
        return
    ro = tmp_path / "ro"
    (ro / "existing").mkdir(parents=True)  # a folder in it, as /sys/kernel has
    ro.chmod(0o555)
    yield ro
    ro.chmod(0o755)


def test_an_out_that_cannot_be_created_names_the_parent_that_refused_and_what_to_do(unwritable, tmp_path, capsys):
    """Tester: "--out /tmp/NAME/ro/sub is not writable: Permission denied" -- it is ro/ that is not writable."""
    reason = "(Permission denied|Operation not permitted)"  # sysfs answers either, by call
    sub = unwritable / "lrfp-bench-sub"
    code, _, err = cli(capsys, "bench", "--model", "model3", "--out", str(sub), "-d", str(tmp_path / "no-store"),
                       "--device", "cpu")
    assert code == 1 and re.fullmatch(
        re.escape(f"Error: --out {sub} cannot be created: {unwritable} is not writable (") + reason + re.escape(
            f"); give --out a folder you can write in, or change the permissions of {unwritable}"), err), err
    code, _, err = cli(capsys, "bench", "--model", "model3", "--out", str(unwritable), "-d", str(tmp_path / "no-store"),
                       "--device", "cpu")
    assert code == 1 and re.fullmatch(
        re.escape(f"Error: --out {unwritable} is not writable (") + reason + re.escape(
            "): give --out a folder you can write in, or change its permissions"), err), err
    assert not sub.exists()


def test_stack_seeds_with_jobs_says_how_on_and_its_advice_works(tmp_path, capsys):
    """Tester: "...cannot be combined with --jobs" gave no advice; --jobs 1, which it now suggests, is accepted.
    (The exact refusal is also in test_bench_run's table of options that cannot work.)"""
    from benchmark.harness import BenchConfig

    code, _, err = cli(capsys, "bench", "--model", "model3", "--stack-seeds", "--jobs", "3", "--out", str(tmp_path / "o"))
    assert (code, err) == (2, "Error: --stack-seeds trains a config's seeds in one process; it cannot be combined "
                              "with --jobs 3: drop --jobs (or give --jobs 1), or drop --stack-seeds to train runs in "
                              "parallel processes")
    BenchConfig(data_dir=tmp_path, out=tmp_path / "o", models=("model3",), stack_seeds=True, jobs=1).check()
    assert not (tmp_path / "o").exists()


def test_the_overlap_warning_says_all_when_every_eval_image_is_in_the_data():
    """Tester: "8 of its 8 images ... Its accuracy is partly measured on those" when all 8 were near-duplicates."""
    from benchmark.overlap import overlap_warning

    none = {"train": 0, "validation": 0, "test": 0}
    every = {"n": 8, "exact_any": 0, "exact": none, "exact_several": 0, "near_any": 8,
             "near": {"train": 6, "validation": 0, "test": 2}, "near_several": 0, "dhash_bits": 4}
    assert overlap_warning("DIR", every) == (
        "--eval-on DIR: all 8 of its images are in the benchmarked data: 8 near-duplicates (dHash within 4 bits, "
        "which can include look-alikes: 6 train, 2 test). Its accuracy is wholly measured on those, not a clean "
        "cross-dataset result: evaluate on images that are not in the store's split (or the published dataset)")
    one = {**every, "n": 1, "near_any": 1, "near": {"train": 1, "validation": 0, "test": 0}}
    assert overlap_warning("DIR", one).startswith("--eval-on DIR: its only image is in the benchmarked data: ")
    some = {**every, "n": 9}
    assert "8 of its 9 images are in the benchmarked data" in overlap_warning("DIR", some)
    assert "Its accuracy is partly measured on those" in overlap_warning("DIR", some)


def test_a_config_name_given_as_model_points_to_its_model(tmp_path, capsys):
    """Tester: `--model model1-bn` (the name every table shows) said only "unknown model". There is no option to
    train one norm alone (plan_runs trains every norm of a model), and the message says so."""
    known = "known models: model1, model2, model3, vgg16, resnet18, alexnet"
    code, _, err = cli(capsys, "bench", "--model", "model1-bn", "--out", str(tmp_path / "o"))
    assert (code, err) == (2, "Error: unknown model 'model1-bn'; model1-bn is a configuration (model model1 with norm "
                              "bn), not a model: give --model model1, which `lrfp bench` trains with each of its norms "
                              f"(bn, bcn, bcn_ws; one norm cannot be picked alone); {known}")
    code, _, err = cli(capsys, "bench", "--model", "model2-bcn_ws", "--out", str(tmp_path / "o"))
    assert code == 2 and "give --model model2, which" in err
    code, _, err = cli(capsys, "bench", "--model", "model3-bn", "--out", str(tmp_path / "o"))  # model3 has no norms
    assert (code, err) == (2, f"Error: unknown model 'model3-bn'; {known}")
    assert not (tmp_path / "o").exists()


def test_a_failed_runs_whole_error_is_printed_under_the_table(smfd_dir, tmp_path, capsys, monkeypatch):
    """Tester: the table's cell cut the reason to ~40 characters ("WorkerProcessDied: the worker process ru"). The
    table keeps the error's type; a list under it gives each failed run's whole error, one line, at any width."""
    import torch

    from bench_helpers import split_store
    from benchmark import registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    why = ("the loss became NaN at step 1 of epoch 1, after the learning rate warm-up, with every one of its "
           "parameters still finite; the end of this sentence must be printed")

    class Diverges(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            raise FloatingPointError(why)

    registry.register_model("diverges", input_size=16, quick_input_size=16, min_input_size=1)(lambda **kw: Diverges())
    monkeypatch.setenv("COLUMNS", "40")
    try:
        data = split_store(tmp_path, smfd_dir, n_groups=30, max_side=32)
        code, stdout, err = cli(capsys, "bench", "--model", "diverges", "--protocol", "quick", "--epochs", "1",
                                "--precision", "fp32", "-d", str(data), "--out", str(tmp_path / "o"), "--device", "cpu")
    finally:
        registry._REGISTRY.pop("diverges")
    assert code == 1
    lines = stdout.splitlines()
    assert "Runs that failed:" in lines
    assert f"  diverges seed 0: FloatingPointError: {why}" in lines
    assert lines.index("Runs that failed:") > next(i for i, line in enumerate(lines) if "FloatingPointError" in line)


def _save(pt: Path) -> None:
    from benchmark.engine import save_best_checkpoint

    assert save_best_checkpoint(pt, {"w": __import__("torch").zeros(4)}, {"val_accuracy": 0.8, "val_loss": 0.5})


def test_a_truncated_earlier_checkpoint_is_summarized_not_cut_mid_sentence(tmp_path, caplog):
    """Tester: the warning quoted torch's text cut off mid-sentence ("...your checkpoint file is)")."""
    from benchmark.engine import save_best_checkpoint

    pt = tmp_path / "model3.pt"
    _save(pt)
    pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="benchmark.engine"):
        assert save_best_checkpoint(pt, {"w": __import__("torch").zeros(4)}, {"val_accuracy": 0.7, "val_loss": 0.6})
    assert (f"the earlier checkpoint {pt} is damaged: it is a truncated or damaged zip (an interrupted copy or "
            "download?); and the sidecar ") in caplog.text  # (whose checksum names the whole .pt)
    assert caplog.text.rstrip().endswith("; it counts as no earlier checkpoint, and this run's best replaces it")


def test_torchs_long_load_error_is_quoted_in_whole_sentences(tmp_path, caplog):
    """A .pt whose zip is whole but whose pickle is damaged: torch's first line (~320 characters for
    weights_only) is quoted up to a sentence's end, in the engine's warning and in `lrfp predict`'s error."""
    import torch

    from benchmark.engine import save_best_checkpoint
    from lrfp.errors import CheckpointError
    from lrfp.predict.checkpoint import load_checkpoint

    pt = tmp_path / "model3.pt"
    _save(pt)
    data = bytearray(pt.read_bytes())
    for i in range(64, 72):  # inside data.pkl, the zip's first member: the zip's directory stays whole
        data[i] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(Exception) as torch_error:
        torch.load(pt, map_location="cpu", weights_only=True)
    line = str(torch_error.value).splitlines()[0]
    if len(line) <= 200:
        pytest.skip(f"this torch's message is short enough to quote whole ({len(line)} characters)")
    quoted = line[: line.rfind(". ", 0, 200) + 1]
    assert quoted.endswith(".") and len(quoted) > 20
    said = f"{type(torch_error.value).__name__}: {quoted}"
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(pt)
    assert f"{pt} cannot be read as a checkpoint ({said}); if `lrfp bench` wrote it, the file is damaged" in str(e.value)
    with caplog.at_level(logging.WARNING, logger="benchmark.engine"):
        assert save_best_checkpoint(pt, {"w": torch.zeros(4)}, {"val_accuracy": 0.7, "val_loss": 0.6})
    assert f"the earlier checkpoint {pt} is damaged: {said}; and the sidecar " in caplog.text


def test_publish_names_the_folder_that_refuses_its_out_too(smfd_dir, unwritable, tmp_path):
    """The same kind as the bench --out message: `lrfp publish` said "cannot create --out X: Permission denied"
    (and "cannot write beside --out X: ..."), naming neither the folder that refused nor what to do."""
    pytest.importorskip("datasets", reason="publishing needs `datasets` (lrfp's own install has it; the GPU machine's python has not)")
    from bench_helpers import split_store
    from lrfp.errors import PublishError
    from lrfp.publish import PublishConfig, export_dataset
    from lrfp.store import open_store

    reason = "(Permission denied|Operation not permitted)"
    with open_store(split_store(tmp_path, smfd_dir, n_groups=30, max_side=32), create=False) as store:
        deep = unwritable / "lrfp-x" / "hub"
        with pytest.raises(PublishError) as e:
            export_dataset(store, PublishConfig(out=deep, split="grouped", annotations_only=True))
        assert re.fullmatch(re.escape(f"--out {deep} cannot be created: {unwritable} is not writable (") + reason
                            + re.escape(f"); give --out a folder you can write in, or change the permissions of "
                                        f"{unwritable}"), str(e.value)), str(e.value)
        beside = unwritable / "lrfp-hub"
        with pytest.raises(PublishError) as e:
            export_dataset(store, PublishConfig(out=beside, split="grouped", annotations_only=True))
        assert re.fullmatch(re.escape(f"--out {beside} cannot be created: {unwritable} is not writable (") + reason
                            + re.escape(f"); give --out a folder you can write in, or change the permissions of "
                                        f"{unwritable}"), str(e.value)), str(e.value)
        # an existing --out (--overwrite) in a folder that refuses the export built beside it (sysfs removes nothing)
        existing = next(p for p in sorted(unwritable.iterdir()) if p.is_dir())
        with pytest.raises(PublishError) as e:
            export_dataset(store, PublishConfig(out=existing, split="grouped", annotations_only=True, overwrite=True))
        assert re.fullmatch(re.escape(f"cannot write beside --out {existing}: the export is built in {unwritable} and "
                                      f"then moved into --out, and {unwritable} refuses it (") + reason + re.escape(
            f"); give another --out, or change the permissions of {unwritable}"), str(e.value)), str(e.value)


def test_an_out_on_a_full_disk_gets_no_advice_about_permissions(tmp_path):
    """unwritable_message's advice fits the error: a full disk is not a permission problem (an OSError as mkdir
    raises it; no test machine's disk can be filled)."""
    import errno

    from lrfp.paths import unwritable_message

    full = OSError(errno.ENOSPC, "No space left on device")
    assert unwritable_message("--out", tmp_path / "a" / "b", full) == (
        f"--out {tmp_path / 'a' / 'b'} cannot be created: {tmp_path} cannot be written in (No space left on device); "
        "give --out a folder you can write in")
