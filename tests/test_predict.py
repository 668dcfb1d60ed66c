"""`lrfp predict` and `lrfp export` with a real checkpoint trained here by `lrfp bench` on real SMFD crops."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import build_store
from predict_helpers import STAGE_360, cut_clip, faceless_clip, train_tiny_checkpoint


def lrfp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed command in a process of its own (used where the whole path matters: two tests)."""
    return subprocess.run([sys.executable, "-m", "lrfp", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, cwd=cwd)


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """`lrfp` through its main() in this process (torch is loaded once for every test)."""
    from lrfp.cli import main

    with pytest.raises(SystemExit) as e:
        main(list(argv))
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err.strip()


@pytest.fixture(scope="session")
def bench_out(smfd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, _ = train_tiny_checkpoint(tmp_path_factory.mktemp("predict_bench"), smfd_dir)
    return out


@pytest.fixture(scope="session")
def ckpt_path(bench_out: Path) -> Path:
    return bench_out / "checkpoints" / "model3.pt"


@pytest.fixture(scope="session")
def clip(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the real 640x360 stage clip (7-9 s: several people, several tracks)."""
    return cut_clip(shared_dir / "data" / "videos" / STAGE_360, tmp_path_factory.mktemp("clip") / "stage2s.mp4", 7.0, 2.0)


@pytest.fixture
def store_with_unlabeled(smfd_dir: Path, tmp_path: Path):
    """A fresh SMFD store whose first 5 crops have had their label cleared (undo back to nothing)."""
    store = build_store(tmp_path / "data", smfd_dir, n_groups=6, seed=3)
    ids = [r[0] for r in store.query("SELECT id FROM crops ORDER BY id")]
    for crop_id in ids[:5]:
        store.add_label(crop_id, None, "ana")
    yield store, ids[:5], ids
    store.close()


def _labels_snapshot(store) -> list[tuple]:
    return [tuple(r) for r in store.query("SELECT id, crop_id, label, annotator, kind FROM labels ORDER BY id")]


# -- checkpoint ---------------------------------------------------------------------------------------------


def test_from_bench_results_picks_the_configs_checkpoint_and_its_recorded_preprocessing(bench_out: Path) -> None:
    from lrfp.predict.checkpoint import best_checkpoint, load_checkpoint

    path = best_checkpoint(bench_out, "model3")
    ck = load_checkpoint(path)
    sidecar = json.loads((bench_out / "checkpoints" / "model3.json").read_text())
    assert path == bench_out / "checkpoints" / "model3.pt"
    assert (ck.config, ck.classes, ck.input_size) == ("model3", ("with_mask", "without_mask"), 32)
    assert list(ck.mean) == sidecar["normalization"]["mean"] and ck.meta["checkpoint_format"] == 1
    assert ck.meta["val_accuracy"] == sidecar["val_accuracy"]


# -- store ---------------------------------------------------------------------------------------------------


def test_store_predictions_go_to_the_unlabeled_crops_and_never_into_labels(store_with_unlabeled, ckpt_path: Path) -> None:
    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.infer import Classifier
    from lrfp.predict.store_target import predict_store
    from lrfp.stats import collect_stats

    store, unlabeled, every = store_with_unlabeled
    before = _labels_snapshot(store)
    ck = load_checkpoint(ckpt_path)
    res = predict_store(store, Classifier(ck))
    latest = store.latest_predictions()
    assert res.crops == 5 and sorted(latest) == sorted(unlabeled)
    p = latest[unlabeled[0]]
    assert (p.checkpoint_sha256, p.config) == (ck.sha256, "model3")
    assert set(p.probs) == {"with_mask", "without_mask"} and sum(p.probs.values()) == pytest.approx(1, abs=1e-5)
    assert _labels_snapshot(store) == before  # not one label event added
    assert res.disagreements == 0  # the predicted crops have no label to disagree with

    res_all = predict_store(store, Classifier(ck), all_crops=True)
    assert res_all.crops == len(every) and store.count_predicted_crops() == len(every)
    labeled = {r["crop_id"]: r["label"] for r in store.query("SELECT crop_id, label FROM current_labels WHERE label IS NOT NULL")}
    latest = store.latest_predictions()
    expected = sum(latest[c].predicted != lab for c, lab in labeled.items())
    assert res_all.disagreements == expected
    assert collect_stats(store)["predictions"] == {"crops": len(every), "disagree_with_label": expected}


def test_cli_predict_on_the_store_then_stats(store_with_unlabeled, bench_out: Path) -> None:
    store, unlabeled, _ = store_with_unlabeled
    data = str(store.root)
    r = lrfp("predict", "--from", str(bench_out), "--config", "model3", "--device", "cpu", "-d", data)
    assert r.returncode == 0, r.stderr
    assert "crops predicted now" in r.stdout and "model3" in r.stdout
    assert sorted(store.latest_predictions()) == sorted(unlabeled)
    r = lrfp("stats", "--json", "-d", data)
    assert json.loads(r.stdout)["predictions"]["crops"] == 5


# -- video ---------------------------------------------------------------------------------------------------


def test_video_gives_faces_tracks_plot_and_annotated_mp4_without_touching_a_store(
    clip: Path, ckpt_path: Path, shared_dir: Path, tmp_path: Path,
) -> None:
    import cv2
    import pyarrow.parquet as pq

    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.faces import FaceSettings
    from lrfp.predict.infer import Classifier
    from lrfp.predict.video_target import VideoPredictConfig, predict_video

    out = tmp_path / "out"
    mp4 = tmp_path / "annotated.mp4"
    # tester's bug 15: a killed (kill -9) earlier run's temporaries stayed for good; this run removes those of the
    # files it writes, and only those (not another file's, not a name of another pattern)
    out.mkdir()
    stale = [out / ".stage2s.faces.csv.ab_cd123.tmp.csv", tmp_path / ".annotated.mp4.x1y2z3w4.tmp.mp4"]
    kept = [out / ".other.faces.csv.ab_cd123.tmp.csv", out / ".stage2s.faces.csv.short.tmp.csv", out / "notes.txt"]
    for p in stale + kept:
        p.write_text("x")
    cfg = VideoPredictConfig(out_dir=out, faces=FaceSettings(models_dir=shared_dir / "models"), video_out=mp4)
    res = predict_video(str(clip), Classifier(load_checkpoint(ckpt_path), batch_size=4), cfg)
    assert [p.exists() for p in stale + kept] == [False, False, True, True, True]
    with open(out / "stage2s.faces.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(out / "stage2s.tracks.csv", newline="") as fh:
        tracks = list(csv.DictReader(fh))
    assert res.frames == 4 and len(rows) == res.faces >= 4  # one frame per 0.5 s; people on stage
    assert len({r["track"] for r in rows}) == len(tracks) == len(res.tracks) >= 2
    for r in rows:
        assert float(r["p_with_mask"]) + float(r["p_without_mask"]) == pytest.approx(1, abs=1e-4)
        assert r["predicted"] == max(("with_mask", "without_mask"), key=lambda c: float(r[f"p_{c}"]))
    for t in tracks:  # the decision is the track's mean probability, over its own rows
        mine = [float(r["p_with_mask"]) for r in rows if r["track"] == t["track"]]
        assert float(t["p_with_mask"]) == pytest.approx(sum(mine) / len(mine), abs=1e-5)
        assert int(t["frames"]) == len(mine)
    assert pq.read_table(out / "stage2s.faces.parquet").num_rows == len(rows)
    assert (out / "stage2s.masked_share.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cap = cv2.VideoCapture(str(mp4))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))) == (4, 640)
    cap.release()
    assert not (tmp_path / "lrfp-data").exists()
    assert res.classify_s < res.detect_s + res.decode_s + 5  # recorded, not asserted as a speed


def test_a_video_without_faces_gives_an_empty_csv_a_clear_line_and_exit_0(
    shared_dir: Path, ckpt_path: Path, tmp_path: Path,
) -> None:
    video = faceless_clip(shared_dir / "data" / "videos" / STAGE_360, tmp_path / "wall.mp4")
    r = lrfp("predict", str(video), "-c", str(ckpt_path), "--models-dir", str(shared_dir / "models"),
             "-o", str(tmp_path / "out"), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "No face found in 2 sampled frames" in r.stdout
    lines = (tmp_path / "out" / "wall.faces.csv").read_text().splitlines()
    assert lines == ["frame,time_s,track,x,y,w,h,score,p_with_mask,p_without_mask,predicted"]
    assert not (tmp_path / "out" / "wall.masked_share.png").exists()


def test_track_decision_is_the_mean_probability_so_one_overconfident_frame_does_not_veto() -> None:
    from lrfp.predict.video_target import decide_tracks, masked_share

    classes = ("with_mask", "without_mask")
    rows = [{"track": 1, "time_s": t, "p_with_mask": p, "p_without_mask": 1 - p}
            for t, p in ((0.0, 0.8), (0.5, 0.8), (1.0, 0.8), (1.5, 0.001))]
    rows += [{"track": 2, "time_s": 1.0, "p_with_mask": 0.3, "p_without_mask": 0.7}]
    t1, t2 = decide_tracks(rows, classes)
    assert t1.mean_probs["with_mask"] == pytest.approx((0.8 * 3 + 0.001) / 4)
    assert (t1.decision, t1.frames, t1.first_s, t1.last_s) == ("with_mask", 4, 0.0, 1.5)  # a log-prob mean says without
    assert t2.decision == "without_mask"
    assert masked_share([t1, t2], 0.5) == [(0.0, 1.0, 1), (0.5, 1.0, 1), (1.0, 0.5, 2), (1.5, 1.0, 1)]


# -- folder --------------------------------------------------------------------------------------------------


def test_folder_with_class_subfolders_gives_accuracy_with_the_bench_interval(
    capsys, smfd_small, ckpt_path: Path, tmp_path: Path,
) -> None:
    from benchmark.metrics import wilson_ci

    folder, _ = smfd_small
    code, out, err = cli(capsys, "predict", str(folder), "-c", str(ckpt_path), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert code == 0, err
    with open(tmp_path / "out" / "smfd_small.predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n_files = sum(1 for p in folder.rglob("*.jpg")) + sum(1 for p in folder.rglob("*.png"))
    assert len(rows) == n_files and all(r["true_class"] == Path(r["file"]).parts[0] for r in rows)
    correct = sum(r["true_class"] == r["predicted"] for r in rows)
    lo, hi = wilson_ci(correct, len(rows))
    assert f"{100 * correct / len(rows):.1f}%" in out
    assert f"{100 * lo:.1f}-{100 * hi:.1f}%" in out


def test_folder_without_class_subfolders_gives_predictions_only(smfd_dir: Path, ckpt_path: Path, tmp_path: Path) -> None:
    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.folder_target import predict_folder
    from lrfp.predict.infer import Classifier

    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted((smfd_dir / "with_mask").iterdir())[:3]:
        shutil.copy(p, flat / p.name)
    (flat / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    # tester's bug 16: these were left out silently (import lists them)
    (flat / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(flat / "pipe.jpg")
    (flat / "dir.jpg").mkdir()
    res = predict_folder(flat, Classifier(load_checkpoint(ckpt_path)))
    assert len(res.rows) == 3 and res.accuracy is None and res.ci95 is None
    assert sorted(res.skipped) == [
        ("broken.png", res.skipped[[s[0] for s in res.skipped].index("broken.png")][1]),
        ("dir.jpg", "a folder, not an image file"),
        ("gone.jpg", f"broken symbolic link (its target {tmp_path / 'nowhere.jpg'} does not exist)"),
        ("pipe.jpg", "not a regular file (a FIFO, a socket or a device)"),
    ]


# -- export --------------------------------------------------------------------------------------------------


def test_onnx_export_documents_preprocessing_and_matches_pytorch_on_real_crops(
    capsys, bench_out: Path, smfd_small, tmp_path: Path,
) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from PIL import Image

    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.export import preprocess
    from lrfp.predict.infer import Classifier

    folder, _ = smfd_small
    out = tmp_path / "m3.onnx"
    code, said, err = cli(capsys, "export", "--from", str(bench_out), "--config", "model3", "-o", str(out), "--check-on", str(folder))
    assert code == 0, err
    assert "max |p_onnx - p_torch|" in said
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["classes"]) == ["with_mask", "without_mask"]
    assert (meta["input_size"], meta["color_order"]) == ("32", "RGB")
    assert json.loads(meta["mean"]) == [0.485, 0.456, 0.406] and json.loads(meta["std"]) == [0.229, 0.224, 0.225]
    # The ONNX model, fed as its metadata says, gives lrfp predict's probabilities on real crops (any batch size).
    ck = load_checkpoint(bench_out / "checkpoints" / "model3.pt")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.rglob("*.jpg"))[:7]]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    p_onnx = sess.run(["probabilities"], {"input": preprocess(images, ck)})[0]
    p_torch = Classifier(ck).predict_proba(images)
    assert p_onnx.shape == (7, 2)
    assert float(np.abs(p_onnx - p_torch).max()) < 1e-4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes, not a temporary's 0600


def test_an_export_that_fails_half_way_keeps_the_earlier_file_and_leaves_no_temporary(
    capsys, ckpt_path: Path, smfd_small, tmp_path: Path, monkeypatch,
) -> None:
    import onnx

    folder, _ = smfd_small
    (tmp_path / "models").mkdir()
    out = tmp_path / "models" / "m.onnx"
    out.write_bytes(b"an earlier export")

    def refuse(model, *a, **k):  # injected: the ONNX checker refusing the model, after the file was written
        raise onnx.checker.ValidationError("injected")

    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    code, _, err = cli(capsys, "export", "-c", str(ckpt_path), "-o", str(out), "--check-on", str(folder))
    assert code != 0 and "injected" in err
    assert out.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx"]


# -- bad input -------------------------------------------------------------------------------------------------


def _bad(tmp_path: Path, ckpt_path: Path, kind: str) -> Path:
    import torch

    p = tmp_path / f"{kind}.pt"
    if kind == "text":
        p.write_text("epoch,accuracy\n1,0.9\n")
    elif kind == "truncated":
        data = ckpt_path.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "bare_state_dict":
        torch.save(torch.load(ckpt_path, weights_only=True)["state_dict"], p)
    elif kind == "other_model":  # model1's weights in a checkpoint that says model3
        from benchmark.registry import create_model

        obj = torch.load(ckpt_path, weights_only=True)
        obj["state_dict"] = create_model("model1", norm="bn", input_size=32).state_dict()
        torch.save(obj, p)
    elif kind == "other_classes":
        obj = torch.load(ckpt_path, weights_only=True)
        obj["classes"] = ["mask", "no_mask"]
        torch.save(obj, p)
    elif kind == "newer":
        obj = torch.load(ckpt_path, weights_only=True)
        obj["checkpoint_format"] = 99
        torch.save(obj, p)
    elif kind == "older":
        obj = torch.load(ckpt_path, weights_only=True)
        del obj["normalization"], obj["classes"]
        torch.save(obj, p)
    return p


@pytest.mark.parametrize("kind, words", [
    ("text", "is not a checkpoint: it is a text file (starts with 'epoch,accuracy')"),
    ("truncated", "is not a checkpoint: it is a truncated or damaged zip"),
    ("bare_state_dict", "is a bare state dict (weights only"),
    ("other_model", "its weights do not fit model3"),
    ("newer", "has checkpoint format 99"),
    ("older", "lacks classes, normalization: it was not written by `lrfp bench` of this version"),
    ("other_classes", "predicts mask, no_mask, but the store's labels are with_mask, without_mask"),
])
def test_a_bad_checkpoint_is_refused_with_exit_2_and_the_store_keeps_everything(
    capsys, kind: str, words: str, store_with_unlabeled, ckpt_path: Path, tmp_path: Path,
) -> None:
    store, _, _ = store_with_unlabeled
    before = (_labels_snapshot(store), store.count_crops())
    bad = _bad(tmp_path, ckpt_path, kind)
    code, out, err = cli(capsys, "predict", "-c", str(bad), "-d", str(store.root), "--device", "cpu")
    assert code == 2, err
    assert err.startswith("Error: ") and words in err and "Traceback" not in err and out == ""
    if kind != "other_classes" and kind != "newer":
        assert "lrfp bench" in err  # the fix is named
    assert (_labels_snapshot(store), store.count_crops()) == before
    assert store.count_predicted_crops() == 0


def test_usage_errors_name_the_fix(capsys, bench_out: Path, ckpt_path: Path, clip: Path, smfd_small, tmp_path: Path) -> None:
    cases = [
        ((), "name the model: --checkpoint PATH"),
        (("--from", str(bench_out)), "--from BENCH_OUT needs --config NAME"),
        (("--from", str(bench_out), "--config", "resnet18"), "no checkpoint for config 'resnet18' (there: model3)"),
        (("--from", str(tmp_path / "nope"), "--config", "model3"), "no such folder"),
        (("-c", str(ckpt_path), "--from", str(bench_out), "--config", "model3"), "not both"),
        (("-c", str(tmp_path / "absent.pt")), "no checkpoint file at"),
        (("-c", str(ckpt_path), str(tmp_path / "absent.mp4")), "no such file or folder"),
        (("-c", str(ckpt_path), "--device", "tpu"), "--device must be auto, cpu, cuda or cuda:N"),
        (("-c", str(ckpt_path), str(clip), "--video-out", str(tmp_path / "a.avi")), "give a file name ending in .mp4"),
        (("-c", str(ckpt_path), str(smfd_small[0]), "--all"), "--all is for the store's crops"),
        (("-c", str(ckpt_path), "--batch-size", "0"), "--batch-size must be at least 1"),
    ]
    for args, words in cases:
        code, _, err = cli(capsys, "predict", *args, "-d", str(tmp_path / "no-store"))
        assert code == 2, (args, err)
        assert err.startswith("Error: ") and words in err, (args, err)


def test_a_text_file_given_as_a_video_is_refused(capsys, ckpt_path: Path, tmp_path: Path, shared_dir: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are notes, not a video\n")
    code, _, err = cli(capsys, "predict", str(notes), "-c", str(ckpt_path), "--models-dir", str(shared_dir / "models"),
                       "-o", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith(f"Error: {notes} is not a video")


def test_a_gpu_asked_for_where_there_is_none_is_refused_before_any_work(capsys, ckpt_path: Path, store_with_unlabeled) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    store, _, _ = store_with_unlabeled
    code, _, err = cli(capsys, "predict", "-c", str(ckpt_path), "--device", "cuda", "-d", str(store.root))
    assert code == 1  # the machine's refusal, as in `lrfp bench` (exit 2 is for a wrong option)
    assert "--device cuda asked for, but no CUDA device is available" in err and "use --device cpu" in err
    assert store.count_predicted_crops() == 0


def test_a_url_goes_through_fetchs_download_and_gives_the_files_faces(
    capsys, clip: Path, ckpt_path: Path, shared_dir: Path, tmp_path: Path,
) -> None:
    """yt-dlp really downloads from a server on 127.0.0.1 (the network's edge); a dead URL is a clear failure."""
    from fetch_helpers import closed_port, serve

    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.faces import FaceSettings
    from lrfp.predict.infer import Classifier
    from lrfp.predict.video_target import VideoPredictConfig, predict_video

    clf = Classifier(load_checkpoint(ckpt_path))
    faces = FaceSettings(models_dir=shared_dir / "models")
    local = predict_video(str(clip), clf, VideoPredictConfig(out_dir=tmp_path / "a", faces=faces))
    with serve(clip.parent) as base:
        remote = predict_video(f"{base}/{clip.name}", clf, VideoPredictConfig(out_dir=tmp_path / "b", faces=faces))
    assert (remote.frames, remote.faces, len(remote.tracks)) == (local.frames, local.faces, len(local.tracks))
    # the download is removed once done, and the downloads/ folder the run made (tester's bug 15: it stayed, empty)
    assert sorted(os.listdir(tmp_path / "b")) == sorted(p.name for p in remote.files)
    code, _, err = cli(capsys, "predict", f"http://127.0.0.1:{closed_port()}/v.mp4", "-c", str(ckpt_path),
                       "--models-dir", str(shared_dir / "models"), "-o", str(tmp_path / "c"))
    assert code == 1 and err.startswith(f"Error: cannot download http://127.0.0.1:") and "(download_failed)" in err


def test_export_refuses_a_bad_checkpoint_and_an_unchecked_export(capsys, ckpt_path: Path, tmp_path: Path) -> None:
    text = _bad(tmp_path, ckpt_path, "text")
    code, _, err = cli(capsys, "export", "-c", str(text), "-o", str(tmp_path / "m.onnx"), "--check-on", str(tmp_path))
    assert code == 2 and "is not a checkpoint: it is a text file" in err
    code, _, err = cli(capsys, "export", "-c", str(ckpt_path), "-o", str(tmp_path / "m.onnx"), "-d", str(tmp_path / "none"))
    assert code == 2 and "no crops to check the export on" in err and "--check-on FOLDER" in err
    code, _, err = cli(capsys, "export", "-c", str(ckpt_path), "-o", str(tmp_path / "m.pt"), "--check-on", str(tmp_path))
    assert code == 2 and "give a file name ending in .onnx" in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_and_predict_folder_options_given_a_file_say_it_is_a_file(
    capsys, ckpt_path: Path, bench_out: Path, smfd_small, tmp_path: Path
) -> None:
    """A new user gave `export --check-on` an image file and was told "no such folder"."""
    image = sorted((smfd_small[0] / "with_mask").iterdir())[0]
    assert image.is_file()
    code, _, err = cli(capsys, "export", "-c", str(ckpt_path), "-o", str(tmp_path / "m.onnx"), "--check-on", str(image))
    assert code == 2 and err.startswith(f"Error: --check-on {image} is a file, not a folder: give a folder"), err
    code, _, err = cli(capsys, "export", "-c", str(ckpt_path), "-o", str(tmp_path / "m.onnx"),
                       "--check-on", str(tmp_path / "gone"))
    assert code == 2 and err.startswith(f"Error: --check-on {tmp_path / 'gone'} does not exist"), err
    assert not (tmp_path / "m.onnx").exists()
    ckpt_file = bench_out / "checkpoints" / "model3.pt"
    for command in ("predict", "export"):
        code, _, err = cli(capsys, command, "--from", str(ckpt_file), "--config", "model3", "-d", str(tmp_path / "none"))
        assert code == 2 and err.startswith(f"Error: --from {ckpt_file} is a file, not a folder"), (command, err)
        assert "--checkpoint" in err


@pytest.mark.gpu
def test_on_cuda_the_probabilities_are_the_cpus(ckpt_path: Path, smfd_small) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.infer import Classifier, resolve_device

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here (the default run leaves gpu tests out: -m 'not gpu')")
    folder, _ = smfd_small
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.rglob("*.jpg"))[:20]]
    assert resolve_device("auto") == "cuda"
    cpu = Classifier(load_checkpoint(ckpt_path), "cpu").predict_proba(images)
    gpu = Classifier(load_checkpoint(ckpt_path), "cuda").predict_proba(images)
    assert float(np.abs(cpu - gpu).max()) < 1e-3


def test_a_crop_file_gone_missing_is_listed_and_the_others_are_predicted(store_with_unlabeled, ckpt_path: Path) -> None:
    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.infer import Classifier
    from lrfp.predict.store_target import predict_store

    store, unlabeled, _ = store_with_unlabeled
    store.crop_file(store.crop(unlabeled[1])).unlink()
    res = predict_store(store, Classifier(load_checkpoint(ckpt_path)))
    assert [u[0] for u in res.unreadable] == [unlabeled[1]] and "No such file" in res.unreadable[0][1]
    assert sorted(store.latest_predictions()) == sorted(set(unlabeled) - {unlabeled[1]})


def test_store_as_puts_a_videos_faces_in_the_store_as_fetch_would_with_predictions_not_labels(
    capsys, clip: Path, ckpt_path: Path, shared_dir: Path, tmp_path: Path,
) -> None:
    from lrfp.store import open_store

    data = tmp_path / "data"
    code, out, err = cli(capsys, "predict", str(clip), "-c", str(ckpt_path), "--models-dir", str(shared_dir / "models"),
                         "-o", str(tmp_path / "out"), "--store-as", "stage2s", "-d", str(data))
    assert code == 0, err
    assert "Stored as source stage2s: ok" in out.replace("\n", " ")
    with open_store(data, create=False) as store:
        src = store.source("stage2s")
        crops = store.crop_paths(source_id=src["id"])
        preds = store.latest_predictions([c for c, _ in crops])
        assert src["kind"] == "video" and src["status"] == "ok" and src["url"] == str(clip.resolve())
        assert crops and set(preds) == {c for c, _ in crops}  # every stored crop has a prediction
        assert all(store.current_label(c) is None for c, _ in crops)  # and none a label
        n = len(crops)
    # Again: the same crops (content-addressed), nothing twice.
    assert cli(capsys, "predict", str(clip), "-c", str(ckpt_path), "--models-dir", str(shared_dir / "models"),
               "-o", str(tmp_path / "out"), "--store-as", "stage2s", "-d", str(data))[0] == 0
    with open_store(data, create=False) as store:
        assert len(store.crop_paths(source_id=store.source("stage2s")["id"])) == n
    # A name taken by another source, a bad name, or --store-as without a video: exit 2 before any work.
    code, _, err = cli(capsys, "predict", str(tmp_path / "out"), "-c", str(ckpt_path), "--store-as", "x", "-d", str(data))
    assert code == 2 and "--store-as is for a video TARGET" in err
    code, _, err = cli(capsys, "predict", str(clip), "-c", str(ckpt_path), "--store-as", "a/b", "-d", str(data))
    assert code == 2 and "--store-as 'a/b' contains '/'" in err
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    code, _, err = cli(capsys, "predict", str(other), "-c", str(ckpt_path), "--models-dir", str(shared_dir / "models"),
                       "--store-as", "stage2s", "-d", str(data))
    assert code == 2 and "already another video" in err
