"""The SQLite store: schema, migrations, crash safety, concurrent access."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from lrfp import store as store_mod
from lrfp.errors import DataDirError, NotFoundError, SchemaError
from lrfp.store import CropOrigin, Store, open_store


def png_bytes(color: tuple[int, int, int], size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def test_new_store_has_schema_wal_and_foreign_keys(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        assert s.schema_version() == store_mod.latest_schema_version()
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in s.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert {"sources", "frames", "crops", "labels", "current_labels", "splits", "split_assignments"} <= tables


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute("INSERT INTO labels(crop_id, label, annotator, kind, created_at) "
                           "VALUES (12345, 'with_mask', 'a', 'label', '2026-01-01')")
        with pytest.raises(NotFoundError) as e:  # the store's own call says which crop, typed
            s.add_label(crop_id=12345, label="with_mask", annotator="a")
        assert isinstance(e.value.__cause__, sqlite3.IntegrityError)


def test_crop_roundtrip_with_origin_and_dedupe(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v1", "video", url="https://example.org/v.mp4", license="CC-BY-4.0", height=360)
        png = png_bytes((10, 20, 30))
        origin = CropOrigin(frame_index=25, time_s=1.0, box=(4, 5, 30, 30), score=0.9, detector="blazeface", track_id="v1:t0")
        crop_id, created = s.add_crop(src, png, 8, 8, origin)
        again, created_again = s.add_crop(src, png, 8, 8, origin)
        row = s.crop(crop_id)
        assert created and not created_again and again == crop_id
        assert s.count_crops() == 1
        assert s.crop_file(row).read_bytes() == png
        assert row["sha256"] == hashlib.sha256(png).hexdigest()
        assert (row["frame_index"], row["time_s"], row["box_x"], row["box_w"], row["track_id"]) == (25, 1.0, 4, 30, "v1:t0")


def test_label_history_and_current_label(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("f", "folder")
        crop_id, _ = s.add_crop(src, png_bytes((1, 2, 3)), 8, 8)
        assert s.current_label(crop_id) is None
        s.add_label(crop_id, "with_mask", "ana")
        s.add_label(crop_id, "without_mask", "ana")
        s.add_label(crop_id, "with_mask", "bob", kind="review")  # a blind second look is not the label
        assert s.current_label(crop_id) == "without_mask"
        s.add_label(crop_id, None, "ana")  # undo back to nothing
        assert s.current_label(crop_id) is None
        assert [(h["label"], h["annotator"], h["kind"]) for h in s.label_history(crop_id)] == [
            ("with_mask", "ana", "label"), ("without_mask", "ana", "label"),
            ("with_mask", "bob", "review"), (None, "ana", "label"),
        ]


def test_a_label_for_a_removed_crop_is_a_typed_error_and_writes_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("f", "folder")
        crop_id, _ = s.add_crop(src, png_bytes((1, 2, 3)), 8, 8)
        s.delete_crops([crop_id])  # as another command's --redo does
        with pytest.raises(NotFoundError, match=f"crop {crop_id} is not in the store"):
            s.add_label(crop_id, "with_mask", "ana")
        assert s.query("SELECT COUNT(*) AS n FROM labels")[0]["n"] == 0


def test_splits_are_named_and_last_used_is_remembered(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("f", "folder")
        ids = [s.add_crop(src, png_bytes((i, 0, 0)), 8, 8, label="with_mask")[0] for i in range(3)]
        with pytest.raises(NotFoundError, match="run `lrfp split` first"):
            s.resolve_split(None)
        s.save_split("a", [(ids[0], "train"), (ids[1], "test")], seed=1, params={}, report={})
        s.save_split("b", [(ids[2], "validation")], seed=2, params={}, report={})
        assert s.resolve_split(None) == "b"
        assert s.resolve_split("a") == "a"
        assert [r["subset"] for r in s.split_crops("a")] == ["test", "train"]
        with pytest.raises(NotFoundError, match=r"no split named 'zz' \(known: a, b\)"):
            s.resolve_split("zz")


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with open_store(data) as s:
        s.upsert_source("keep-me", "folder")
    db = data / store_mod.DB_NAME
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {store_mod.latest_schema_version() + 5}")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(SchemaError, match=rf"schema version {store_mod.latest_schema_version() + 5}, but this lrfp knows up to {store_mod.latest_schema_version()}: upgrade lrfp"):
        open_store(data)
    assert db.read_bytes() == before


def test_not_an_sqlite_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / store_mod.DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(SchemaError, match="is not a usable lrfp store"):
        open_store(data)


def test_migration_to_a_new_version_keeps_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d"
    with open_store(data) as s:
        src = s.upsert_source("f", "folder")
        crop_id, _ = s.add_crop(src, png_bytes((9, 9, 9)), 8, 8, label="with_mask")
    v2 = "ALTER TABLE crops ADD COLUMN blur REAL; CREATE INDEX crops_blur ON crops(blur);"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, v2])
    with Store(data) as s:
        assert s.schema_version() == store_mod.latest_schema_version()
        assert s.crop(crop_id)["blur"] is None
        assert s.current_label(crop_id) == "with_mask"


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d"
    open_store(data).close()
    broken = "ALTER TABLE crops ADD COLUMN ok REAL; ALTER TABLE no_such_table ADD COLUMN x;"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, broken])
    with pytest.raises(SchemaError):
        Store(data)
    monkeypatch.undo()
    with open_store(data) as s:  # still the old, intact schema
        assert s.schema_version() == store_mod.latest_schema_version()
        assert "ok" not in {r[1] for r in s.query("PRAGMA table_info(crops)")}


def test_data_dir_that_is_a_file_or_not_writable(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataDirError, match="is not a directory"):
        open_store(f)
    with pytest.raises(DataDirError, match="cannot create data directory"):
        open_store(f / "sub")
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        ro = Path("/sys/kernel")  # root ignores permission bits; sysfs refuses file creation to everyone
    else:
        ro.chmod(0o555)
    try:
        with pytest.raises(DataDirError, match="is not writable"):
            open_store(ro)
    finally:
        if ro.is_relative_to(tmp_path):
            ro.chmod(0o755)


def test_opening_a_missing_store_for_reading_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="no lrfp data directory"):
        open_store(tmp_path / "nothing", create=False)


def test_stale_temporary_files_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    data = tmp_path / "d"
    open_store(data).close()
    d = data / "tmp"
    d.mkdir(exist_ok=True)
    dead = d / "crops_ab_x.png.999999999.tmp"
    live = d / f"crops_ab_y.png.{os.getppid()}.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    open_store(data).close()
    assert not dead.exists()
    assert live.exists()


def test_a_kill_before_the_rename_leaves_a_temporary_file_that_the_next_open_removes(tmp_path: Path, monkeypatch) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "folder")
        monkeypatch.setattr(store_mod.os, "replace", lambda a, b: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            s.add_crop(src, png_bytes((9, 9, 9)), 8, 8)
        monkeypatch.undo()
        left = list((s.root / "tmp").glob("*.tmp"))
        assert len(left) == 1 and s.count_crops() == 0 and not list((s.root / "crops").rglob("*.png"))
    # The same process opening again: its own pid's leftovers are stale too (nothing of it is writing them).
    with open_store(tmp_path / "d") as s:
        assert not list((s.root / "tmp").glob("*.tmp"))
        crop_id, created = s.add_crop(src, png_bytes((9, 9, 9)), 8, 8)
        assert created and s.crop_file(s.crop(crop_id)).read_bytes() == png_bytes((9, 9, 9))


def _writer(data_dir: str, worker: int, n: int) -> None:
    with open_store(data_dir) as s:
        src = s.upsert_source("shared", "folder")
        for i in range(n):
            crop_id, _ = s.add_crop(src, png_bytes((worker, i % 256, i // 256)), 8, 8)
            s.add_label(crop_id, "with_mask", f"w{worker}")


def test_two_processes_write_one_store_without_loss(tmp_path: Path) -> None:
    data = tmp_path / "d"
    open_store(data).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(data), w, 150)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with open_store(data) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert s.count_crops() == 300
        assert s.query("SELECT COUNT(*) FROM labels")[0][0] == 300
        assert len(s.sources()) == 1
        for row in s.query("SELECT path, sha256 FROM crops"):
            assert hashlib.sha256((data / row["path"]).read_bytes()).hexdigest() == row["sha256"]


# -- the fetch writer's batch path --------------------------------------------------------------------


def _batch(n: int, frame_index: int = 10) -> tuple[list, list]:
    from lrfp.store import NewCrop, NewFrame

    frames = [NewFrame(frame_index, 0.4, 64, 48, png_bytes((5, 5, 5), 16), ext="png"), NewFrame(frame_index + 1, 0.44, 64, 48)]
    crops = [NewCrop(png_bytes((i, 100, 200)), 8, 8, CropOrigin(frame_index=frame_index + i % 2, time_s=0.4, box=(1, 2, 3, 4),
                                                              score=0.8, track_id=f"v:t{i}")) for i in range(n)]
    return frames, crops


def test_batch_of_frames_and_crops_is_stored_once_with_links(tmp_path: Path) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        frames, crops = _batch(5)
        crops.append(crops[0])  # the same PNG twice in one batch
        out = s.add_frames_and_crops(src, frames, crops)
        assert [created for _, created in out] == [True] * 5 + [False]
        assert out[5][0] == out[0][0]
        assert s.count_crops() == 5
        for (crop_id, _), c in zip(out, crops):
            row = s.crop(crop_id)
            assert s.crop_file(row).read_bytes() == c.png
            frame = s.conn.execute("SELECT * FROM frames WHERE id = ?", (row["frame_id"],)).fetchone()
            assert frame["frame_index"] == c.origin.frame_index and row["track_id"] == c.origin.track_id
        with_image = s.conn.execute("SELECT path FROM frames WHERE frame_index = 10").fetchone()[0]
        assert (s.root / with_image).read_bytes() == frames[0].image
        assert s.conn.execute("SELECT path FROM frames WHERE frame_index = 11").fetchone()[0] is None
        again = s.add_frames_and_crops(src, frames, crops)  # a rerun of the same video
        assert again == [(i, False) for i, _ in out]
        assert s.count_crops() == 5 and s.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 2
        assert not list(s.root.rglob("*.tmp"))


def test_a_batch_that_fails_commits_no_row_and_a_retry_reuses_its_files(tmp_path: Path, monkeypatch) -> None:
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        frames, crops = _batch(4)
        real = s._crop_ids_by_sha256
        calls = []

        def fail_under_the_lock(digests):
            calls.append(1)
            if len(calls) == 2:  # the second lookup runs inside the transaction, after the frames' rows
                raise KeyboardInterrupt
            return real(digests)

        monkeypatch.setattr(s, "_crop_ids_by_sha256", fail_under_the_lock)
        with pytest.raises(KeyboardInterrupt):
            s.add_frames_and_crops(src, frames, crops)
        assert s.count_crops() == 0 and s.conn.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 0
        assert len(list((s.root / "crops").rglob("*.png"))) == 4  # files without rows: harmless, reused
        monkeypatch.setattr(s, "_crop_ids_by_sha256", real)
        out = s.add_frames_and_crops(src, frames, crops)
        assert all(created for _, created in out) and s.count_crops() == 4


def test_a_torn_file_of_the_right_size_is_rewritten(tmp_path: Path) -> None:
    """After a power cut a renamed file can hold zeros: same size is not the same content."""
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        frames, crops = _batch(1)
        digest = hashlib.sha256(crops[0].png).hexdigest()
        torn = s.root / "crops" / digest[:2] / f"{digest}.png"
        torn.parent.mkdir(parents=True)
        torn.write_bytes(b"\0" * len(crops[0].png))
        (crop_id, created), = s.add_frames_and_crops(src, frames, crops)
        assert created and s.crop_file(s.crop(crop_id)).read_bytes() == crops[0].png


def test_without_syncfs_each_file_is_fsynced(tmp_path: Path, monkeypatch) -> None:
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(store_mod, "_syncfs", lambda path: False)
    monkeypatch.setattr(store_mod.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        frames, crops = _batch(3)
        out = s.add_frames_and_crops(src, frames, crops)
        files = {str(s.crop_file(s.crop(i))) for i, _ in out}
    assert files <= set(synced)
    assert any(p.endswith("/crops/" + Path(f).parent.name) for p in synced for f in files)  # their folders too


def test_syncfs_is_used_on_linux(tmp_path: Path) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("Linux only")
    assert store_mod._syncfs(tmp_path) is True


def test_a_crop_links_to_its_frame_stored_by_an_earlier_batch(tmp_path: Path) -> None:
    from lrfp.store import NewCrop

    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        frames, crops = _batch(1)
        s.add_frames_and_crops(src, frames, crops)
        later = NewCrop(png_bytes((7, 7, 7)), 8, 8, CropOrigin(frame_index=10, time_s=0.4, track_id="v:t9"))
        (crop_id, created), = s.add_frames_and_crops(src, [], [later])
        frame = s.conn.execute("SELECT frame_index FROM frames WHERE id = ?", (s.crop(crop_id)["frame_id"],)).fetchone()
        assert created and frame is not None and frame[0] == 10


def test_a_crops_folder_removed_while_the_store_is_open_is_made_again(tmp_path: Path) -> None:
    """The store remembers the folders it made; one removed meanwhile (a user's cleanup) is made again."""
    import shutil

    with open_store(tmp_path / "d") as s:
        src = s.upsert_source("v", "video", url="https://example.org/v.mp4")
        png = png_bytes((4, 5, 6))
        digest = hashlib.sha256(png).hexdigest()
        s._write_file_atomically(f"crops/{digest[:2]}/other.bin", b"x")  # the store now knows both folders
        shutil.rmtree(s.root / "crops")
        shutil.rmtree(s.root / "tmp")
        crop_id, created = s.add_crop(src, png, 8, 8)
        assert created and s.crop_file(s.crop(crop_id)).read_bytes() == png


def _two_crops(s: Store) -> tuple[int, int]:
    src = s.upsert_source("f", "folder")
    a, _ = s.add_crop(src, png_bytes((1, 1, 1)), 8, 8)
    b, _ = s.add_crop(src, png_bytes((2, 2, 2)), 8, 8)
    return a, b


def test_predictions_are_stored_apart_from_labels_and_the_latest_wins(tmp_path: Path) -> None:
    from lrfp.store import NewPrediction

    with open_store(tmp_path / "d") as s:
        a, b = _two_crops(s)
        assert s.latest_predictions() == {} and s.count_predicted_crops() == 0
        n = s.add_predictions([
            NewPrediction(a, "sha-old", "model3", {"with_mask": 0.2, "without_mask": 0.8}),
            NewPrediction(b, "sha-old", "model3", {"with_mask": 0.6, "without_mask": 0.4}),
        ])
        s.add_predictions([NewPrediction(a, "sha-new", "model1", {"with_mask": 0.9, "without_mask": 0.1})])
        latest = s.latest_predictions()
        assert n == 2 and set(latest) == {a, b}
        pa = latest[a]
        assert (pa.checkpoint_sha256, pa.config, pa.predicted) == ("sha-new", "model1", "with_mask")
        assert pa.probs == {"with_mask": 0.9, "without_mask": 0.1} and pa.confidence == pytest.approx(0.9)
        assert list(pa.probs) == ["with_mask", "without_mask"]  # the checkpoint's class order is kept
        assert set(s.latest_predictions([b, 999])) == {b}
        assert s.count_predicted_crops() == 2
        assert s.current_label(a) is None and s.label_history(a) == []  # never a label


def test_disagreements_count_only_crops_labeled_with_a_predicted_class(tmp_path: Path) -> None:
    from lrfp.store import NewPrediction

    with open_store(tmp_path / "d") as s:
        a, b = _two_crops(s)
        src = s.upsert_source("f", "folder")
        c, _ = s.add_crop(src, png_bytes((3, 3, 3)), 8, 8)
        d, _ = s.add_crop(src, png_bytes((4, 4, 4)), 8, 8)
        s.add_predictions([NewPrediction(i, "sha", "model3", {"with_mask": 0.7, "without_mask": 0.3}) for i in (a, b, c, d)])
        s.add_label(a, "with_mask", "ana")      # agrees
        s.add_label(b, "without_mask", "ana")   # disagrees
        s.add_label(c, "unusable", "ana")       # not a class: neither
        s.add_label(d, "with_mask", "ana")
        s.add_label(d, "without_mask", "bob", kind="review")  # a review is not the label: d agrees
        assert s.count_prediction_disagreements() == 1
        s.add_predictions([NewPrediction(b, "sha2", "model3", {"with_mask": 0.1, "without_mask": 0.9})])
        assert s.count_prediction_disagreements() == 0  # the latest prediction is the one compared


def test_a_batch_of_predictions_with_an_unknown_crop_stores_nothing(tmp_path: Path) -> None:
    from lrfp.store import NewPrediction

    with open_store(tmp_path / "d") as s:
        a, _ = _two_crops(s)
        with pytest.raises(sqlite3.IntegrityError):
            s.add_predictions([
                NewPrediction(a, "sha", "model3", {"with_mask": 0.5, "without_mask": 0.5}),
                NewPrediction(12345, "sha", "model3", {"with_mask": 0.5, "without_mask": 0.5}),
            ])
        assert s.count_predicted_crops() == 0


def test_a_v1_store_gains_the_predictions_table_and_keeps_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d"
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
    with Store(data) as s:
        src = s.upsert_source("f", "folder")
        crop_id, _ = s.add_crop(src, png_bytes((9, 9, 9)), 8, 8, label="with_mask")
        assert s.schema_version() == 1
    monkeypatch.undo()
    with open_store(data) as s:
        assert s.schema_version() >= 2
        assert s.current_label(crop_id) == "with_mask"
        assert s.count_predicted_crops() == 0


def test_stats_show_predicted_crops_and_disagreements(tmp_path: Path) -> None:
    from lrfp.cli.tables import stats_tables
    from lrfp.stats import collect_stats
    from lrfp.store import NewPrediction

    with open_store(tmp_path / "d") as s:
        a, b = _two_crops(s)
        assert collect_stats(s)["predictions"] == {"crops": 0, "disagree_with_label": 0}
        s.add_label(a, "without_mask", "ana")
        s.add_predictions([NewPrediction(i, "sha", "model3", {"with_mask": 0.8, "without_mask": 0.2}) for i in (a, b)])
        stats = collect_stats(s)
    assert stats["predictions"] == {"crops": 2, "disagree_with_label": 1}
    from rich.console import Console

    console = Console(record=True, width=120)
    for t in stats_tables(stats):
        console.print(t)
    text = console.export_text()
    assert "crops with a model prediction" in text and "predictions disagreeing with the label" in text


def test_a_read_only_command_on_an_older_writable_store_upgrades_it_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lrfp stats (read-only) after upgrading lrfp: the v1 store gains the predictions table as any command would
    migrate it, instead of refusing; on a read-only folder the refusal stays (tests/test_faults.py)."""
    data = tmp_path / "d"
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
    with Store(data) as s:
        s.add_crop(s.upsert_source("f", "folder"), png_bytes((5, 5, 5)), 8, 8, label="with_mask")
    monkeypatch.undo()
    with open_store(data, create=False, read_only=True) as s:
        assert s.schema_version() == store_mod.latest_schema_version()
        assert s.count_crops() == 1 and s.count_predicted_crops() == 0
