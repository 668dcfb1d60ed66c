"""The best checkpoint per config and its .json sidecar (benchmark.engine.save_best_checkpoint) survive a crash
while they are written, a truncated sidecar and a truncated .pt; a damaged .pt is named where it is loaded."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from benchmark import engine
from benchmark.engine import save_best_checkpoint


def _save(path, acc: float) -> bool:
    state = {"w": torch.full((4,), acc)}  # the weights tell which save they came from
    return save_best_checkpoint(path, state, {"val_accuracy": acc, "val_loss": 1 - acc, "config": {"model": "m"}})


def _pt_acc(path) -> float:
    obj = torch.load(path, weights_only=True)
    assert float(obj["state_dict"]["w"][0]) == pytest.approx(obj["val_accuracy"])
    return obj["val_accuracy"]


def test_a_truncated_sidecar_does_not_fail_the_run_and_the_better_checkpoint_stays(tmp_path, caplog):
    pt = tmp_path / "checkpoints" / "model3.pt"
    assert _save(pt, 0.8)
    sidecar = pt.with_suffix(".json")
    sidecar.write_text('{"val_acc')  # what a crash in the middle of writing it left
    with caplog.at_level(logging.WARNING, logger="benchmark.engine"):
        assert not _save(pt, 0.7)  # the .pt itself says 0.8 is better
    assert str(sidecar) in caplog.text and "cannot be read" in caplog.text
    assert _pt_acc(pt) == 0.8 and json.loads(sidecar.read_text())["val_accuracy"] == 0.8  # the sidecar is whole again
    assert _save(pt, 0.9) and _pt_acc(pt) == 0.9 and json.loads(sidecar.read_text())["val_accuracy"] == 0.9
    assert sorted(p.name for p in pt.parent.iterdir()) == [".lock", "model3.json", "model3.pt"]  # no temp files left


def test_a_crash_between_the_two_writes_does_not_lose_the_better_checkpoint(tmp_path, monkeypatch, caplog):
    pt = tmp_path / "model3.pt"
    assert _save(pt, 0.8)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C after the .pt was renamed into place, before the sidecar was

    with monkeypatch.context() as m:
        m.setattr(engine, "_write_sidecar", crash)
        with pytest.raises(KeyboardInterrupt):
            _save(pt, 0.9)
    assert _pt_acc(pt) == 0.9 and json.loads(pt.with_suffix(".json").read_text())["val_accuracy"] == 0.8  # stale
    with caplog.at_level(logging.WARNING, logger="benchmark.engine"):
        assert not _save(pt, 0.85)  # beats the stale sidecar's 0.8, not the 0.9 on disk
    assert "does not describe the checkpoint beside it" in caplog.text
    assert _pt_acc(pt) == 0.9 and json.loads(pt.with_suffix(".json").read_text())["val_accuracy"] == 0.9


def test_a_crash_while_the_pt_is_written_keeps_the_earlier_pair(tmp_path, monkeypatch):
    pt = tmp_path / "model3.pt"
    assert _save(pt, 0.8)

    def half_written(obj, f):
        f.write(b"PK\x03\x04 half")  # (save_best_checkpoint opens the file itself and passes it)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(engine.torch, "save", half_written)
        with pytest.raises(KeyboardInterrupt):
            _save(pt, 0.9)
    assert _pt_acc(pt) == 0.8 and json.loads(pt.with_suffix(".json").read_text())["val_accuracy"] == 0.8
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "model3.json", "model3.pt"]


def test_a_truncated_pt_beside_a_valid_sidecar_is_replaced_not_kept(tmp_path, caplog):
    pt = tmp_path / "model3.pt"
    assert _save(pt, 0.8)
    data = pt.read_bytes()
    pt.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="benchmark.engine"):
        assert _save(pt, 0.7)  # the sidecar says 0.8, but its .pt is gone
    assert f"the earlier checkpoint {pt} is damaged" in caplog.text
    assert _pt_acc(pt) == 0.7 and json.loads(pt.with_suffix(".json").read_text())["val_accuracy"] == 0.7


def test_loading_a_truncated_bench_checkpoint_names_it_and_says_what_to_do(tmp_path):
    from lrfp.errors import CheckpointError
    from lrfp.predict.checkpoint import load_checkpoint

    pt = tmp_path / "model3.pt"
    assert _save(pt, 0.8)
    data = pt.read_bytes()
    pt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(pt)
    msg = str(e.value)
    assert msg.startswith(f"{pt} is not a checkpoint: it is a truncated or damaged zip")
    assert "the file is damaged" in msg and "train it again with `lrfp bench --model MODEL --out DIR`" in msg


def test_a_folder_where_a_file_of_the_save_must_go_is_named_in_the_error(tmp_path):
    """Real file-system conditions that the --out pre-flight check does not look at (a config's own files)."""
    from benchmark.engine import CheckpointError

    pt = tmp_path / "model3.pt"
    pt.mkdir()  # the .pt's place: the rename of its temporary file into place fails
    with pytest.raises(CheckpointError) as e:
        _save(pt, 0.8)
    assert str(e.value) == f"cannot write the checkpoint {pt}: Is a directory"
    pt.rmdir()
    stale = tmp_path / "model3.pt.99999.tmp"
    stale.mkdir()  # a folder with a stale temporary file's name: removing it fails, and it is named
    with pytest.raises(CheckpointError) as e:
        _save(pt, 0.8)
    assert str(e.value) == f"cannot write the checkpoint {pt} ({stale}): Is a directory"
    stale.rmdir()
    (tmp_path / "model3.json").mkdir()  # the sidecar's place
    with pytest.raises(CheckpointError) as e:
        _save(pt, 0.8)
    assert str(e.value) == f"cannot write the checkpoint {pt} ({tmp_path / 'model3.json'}): Is a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "model3.json", "model3.pt"]  # no temp files left
