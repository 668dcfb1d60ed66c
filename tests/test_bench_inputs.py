"""User mistakes given to `lrfp bench` (and the other commands that read a store with -d) exit 2 with what is
wrong and what to do, and leave nothing behind (bench-bugs.md bug 11). Every case fails before any training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench_helpers import split_store
from lrfp.cli import main

FIX = "point -d (or LRFP_DATA_DIR) at a store's folder, or make one with `lrfp import` or `lrfp fetch`"


def cli(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
    return e.value.code, errors[-1] if errors else ""


def bench(capsys, out: Path, *argv: str) -> tuple[int, str]:
    return cli(capsys, "bench", "--model", "model3", "--protocol", "quick", "--epochs", "1", "--precision", "fp32",
               "--device", "cpu", "--out", str(out), *argv)


@pytest.fixture(scope="module")
def store_dir(smfd_dir, tmp_path_factory) -> Path:
    """~110 real SMFD crops (40 groups) at 24 px with a usable split `grouped`."""
    return split_store(tmp_path_factory.mktemp("inputs"), smfd_dir, n_groups=40, max_side=24)


@pytest.fixture()
def eval_dirs(store_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """Three --eval-on folders a user gets wrong: an empty class subfolder, no class subfolders, loose images."""
    images = sorted((store_dir.parent / "smfd_src_0" / "without_mask").iterdir())
    one_class = tmp_path / "one_class"
    (one_class / "with_mask").mkdir(parents=True)
    (one_class / "without_mask").mkdir()
    shutil.copy(images[0], one_class / "without_mask" / images[0].name)
    (tmp_path / "nothing").mkdir()
    loose = tmp_path / "loose"
    loose.mkdir()
    for p in images[:3]:
        shutil.copy(p, loose / p.name)
    return {"one_class": one_class, "nothing": tmp_path / "nothing", "loose": loose}


@pytest.mark.parametrize("command", ["stats", "split", "publish", "label", "review-labels", "bench"])
def test_missing_data_dir_exits_2_for_every_command_that_reads_a_store(command, capsys, tmp_path):
    if command == "label":  # (lrfp's own install has textual; perf/gpu_env_check.sh's, like the GPU machine's, not)
        pytest.importorskip("textual", reason="lrfp label needs textual")
    extra = {"bench": ["--model", "model3", "--out", str(tmp_path / "o")], "publish": ["--out", str(tmp_path / "o")]}
    code, err = cli(capsys, command, "-d", str(tmp_path / "absent"), *extra.get(command, []))
    assert code == 2 and err == f"Error: no lrfp data directory at {tmp_path / 'absent'}: {FIX}"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing made: no data dir, no --out


def test_empty_folder_as_data_dir(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = bench(capsys, tmp_path / "o", "-d", str(tmp_path / "empty"))
    assert code == 2 and err == f"Error: no lrfp store in {tmp_path / 'empty'} (an empty folder): {FIX}"
    assert list((tmp_path / "empty").iterdir()) == [] and not (tmp_path / "o").exists()


def test_a_file_as_data_dir(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    code, err = cli(capsys, "stats", "-d", str(tmp_path / "notes.txt"))  # click's own check of -d (file_okay=False)
    assert code == 2 and err.endswith(f"dir '{tmp_path / 'notes.txt'}' is a file.")
    from lrfp.errors import NoStoreError
    from lrfp.store import open_store

    with pytest.raises(NoStoreError, match=f"data directory {tmp_path / 'notes.txt'} is not a directory: point -d"):
        open_store(tmp_path / "notes.txt", create=False)  # the library says the same (exit 2) without click
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_split_with_an_empty_validation_subset_names_it_and_the_splits_that_work(store_dir, capsys, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(store_dir, data)
    pytest.importorskip("imagehash", reason="`lrfp split` needs imagehash (lrfp's own install has it; the GPU machine's python has not)")
    # `lrfp split` allows a zero ratio (its --help says so); the benchmark cannot use that split
    assert cli(capsys, "split", "-d", str(data), "--name", "noval", "--ratios", "0.8,0,0.2")[0] == 0
    code, err = bench(capsys, tmp_path / "o", "-d", str(data))
    assert code == 2
    assert err.startswith("Error: split 'noval': the validation subset is empty (labeled crops per subset: train ")
    assert ", validation 0, test " in err
    assert err.endswith("this store's splits that would work: grouped (e.g. --split grouped); or make one with "
                        "`lrfp split --name NAME` (ratios that give every subset crops, e.g. the default 0.8,0.04,0.16)")
    assert not (tmp_path / "o").exists()
    # nothing lost: both splits are still there, and the suggested one loads
    from lrfp.store import open_store

    with open_store(data, create=False, read_only=True) as store:
        assert store.split_names() == ["grouped", "noval"]
    from benchmark.data import load_store_split

    assert all(len(s) for s in load_store_split(data, "grouped").subsets.values())  # the suggested split loads


def test_split_with_an_empty_train_subset(store_dir, capsys, tmp_path):
    from lrfp.store import open_store

    data = tmp_path / "data"
    shutil.copytree(store_dir, data)
    with open_store(data) as store:
        ids = [r["id"] for r in store.query("SELECT id FROM crops ORDER BY id")]
        store.save_split("notrain", [(c, "validation" if i % 2 else "test") for i, c in enumerate(ids)], seed=None,
                         params={}, report={})
    code, err = bench(capsys, tmp_path / "o", "-d", str(data), "--split", "notrain")
    assert code == 2 and err.startswith("Error: split 'notrain': the train subset is empty")
    assert "(e.g. --split grouped)" in err


@pytest.mark.parametrize("case, message", [
    ("one_class", "Error: --eval-on {p}: its with_mask/ subfolder holds no images (without_mask/ holds 1): an "
                  "evaluation set needs images of both classes; put the with_mask images in {p}/with_mask/"),
    ("nothing", "Error: --eval-on {p} has no class subfolders (with_mask/, without_mask/) and is not a dataset written "
                "by `lrfp publish` (no data/*.parquet): give a folder with with_mask/ and without_mask/ subfolders of images"),
    ("loose", "Error: --eval-on {p} has no class subfolders (with_mask/, without_mask/) and is not a dataset written "
              "by `lrfp publish` (no data/*.parquet): it holds 3 images outside class subfolders: move them into "
              "{p}/with_mask/ and {p}/without_mask/"),
])
def test_eval_on_folders_without_images_of_both_classes(case, message, store_dir, eval_dirs, capsys, tmp_path):
    folder = eval_dirs[case]
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    code, err = bench(capsys, tmp_path / "o", "-d", str(store_dir), "--eval-on", str(folder))
    assert code == 2 and err == message.format(p=folder)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before and not (tmp_path / "o").exists()


def test_empty_out_is_refused_not_the_current_folder(store_dir, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, "bench", "--model", "model3", "-d", str(store_dir), "--out", "")
    assert code == 2 and err == "Error: --out is empty: give the folder for the results, e.g. --out bench-results"
    assert list(tmp_path.iterdir()) == []


def test_out_under_a_file_and_out_a_file(store_dir, capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    code, err = bench(capsys, notes / "sub", "-d", str(store_dir))
    assert code == 2 and err == f"Error: --out {notes / 'sub'}: {notes} is a file, so no folder can be made under it; give another --out"
    code, err = bench(capsys, notes, "-d", str(store_dir))
    assert code == 2 and err == f"Error: --out {notes} is a file, not a folder: give a folder for the results (created if missing)"
    assert notes.read_text() == "keep me"


def test_all_with_model_is_refused(capsys, tmp_path):
    code, err = cli(capsys, "bench", "--all", "--model", "model3", "--model", "model1", "--out", str(tmp_path / "o"))
    assert code == 2 and err == "Error: --all runs every model, --model model3 --model model1 only some: give one of them"
    assert not (tmp_path / "o").exists()


def test_dataset_folder_that_holds_no_dataset(capsys, tmp_path):
    pytest.importorskip("datasets", reason="--dataset reads published folders with the datasets package")
    (tmp_path / "pub").mkdir()
    code, err = cli(capsys, "bench", "--model", "model3", "--device", "cpu", "--dataset", str(tmp_path / "pub"),
                    "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith(f"Error: no dataset at '{tmp_path / 'pub'}' (a folder written by `lrfp publish`")
    assert not (tmp_path / "o").exists()


def test_dataset_without_a_validation_split(capsys, tmp_path):
    datasets = pytest.importorskip("datasets", reason="--dataset reads published folders with the datasets package")
    from PIL import Image

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["with_mask", "without_mask"])})
    part = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8))] * 2, "label": [0, 1]}, features=feats)
    datasets.DatasetDict({"train": part, "test": part}).save_to_disk(str(tmp_path / "pub"))
    code, err = cli(capsys, "bench", "--model", "model3", "--device", "cpu", "--dataset", str(tmp_path / "pub"),
                    "--out", str(tmp_path / "o"))
    assert code == 2 and err == (f"Error: dataset '{tmp_path / 'pub'}' has no validation split (has: train, test): a "
                                 "benchmark needs train, validation and test, as `lrfp publish` writes them")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, option", [
    (["publish", "--out", ""], "--out"), (["predict", "face.png", "--out", ""], "--out"), (["stats", "-d", ""], "-d"),
    (["stats", "--data-dir="], "--data-dir"), (["export", "--out", " "], "--out"),
])
def test_an_empty_path_option_is_refused_by_every_command(argv, option, capsys, tmp_path, monkeypatch):
    """click reads "" as the current folder: a command would read or write there silently (bug 11's kind)."""
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, *argv)
    assert code == 2 and err == f'Error: {option} is empty: give a path ("." for the current folder)'
    assert list(tmp_path.iterdir()) == []


def test_an_eval_on_folder_is_named_by_its_folder_however_spelled(smfd_dir, tmp_path, monkeypatch):
    """`--eval-on .` was named "" (Path(".").name), another eval set than `--eval-on ../ev/` of the same folder."""
    from benchmark.data import load_eval_set
    from conftest import smfd_subset

    folder, _ = smfd_subset(smfd_dir, tmp_path / "ev", n_groups=4, seed=3)
    monkeypatch.chdir(folder)
    names = {load_eval_set(spelled)[0] for spelled in (".", "./", f"../{folder.name}/", str(folder))}
    assert names == {"ev"}
