"""Rules defined once (face size and its bands, the PNG encoder, the group of a crop): the places that had drifted agree now."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.metrics import band_of
from lrfp.bands import FACE_BANDS, face_band
from lrfp.images import encode_png
from lrfp.stats import collect_stats
from lrfp.store import CropOrigin, open_store


def test_band_edges_are_lower_inclusive() -> None:
    sizes = (0, 23, 24, 31, 32, 47, 48, 63, 64, 127, 128, 4000)
    assert [face_band(x) for x in sizes] == [
        "<24", "<24", "24-32", "24-32", "32-48", "32-48", "48-64", "48-64", "64-128", "64-128", ">=128", ">=128"]
    with pytest.raises(ValueError, match="outside every band"):
        face_band(-1)


def test_stats_and_bench_rows_put_each_boundary_face_in_the_same_band(tmp_path: Path) -> None:
    # stats used [48, 64) and the bench rows [48, 65): a 64 px face was "64-128" in one and "48-64" in the other.
    sides = [23, 24, 47, 48, 63, 64, 65, 127, 128]
    with open_store(tmp_path / "d") as store:
        src = store.upsert_source("v", "video")
        for i, side in enumerate(sides):
            png = encode_png(Image.new("RGB", (side, side), (i, 2 * i, 3 * i)))
            store.add_crop(src, png, side, side, CropOrigin(box=(0, 0, side, side)))
        bands = collect_stats(store)["face_px"]["bands"]
    expected = {name: 0 for name, _, _ in FACE_BANDS}
    for side in sides:
        expected[band_of(side)] += 1
    assert bands == expected
    assert bands["64-128"] == 3 and bands["48-64"] == 2


def test_one_png_encoder_for_imported_and_fetched_pixels() -> None:
    # Import hands a PIL RGB image, fetch an OpenCV BGR array: the same pixels must give the same bytes,
    # since the store is content-addressed by them.
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    from_pil = encode_png(Image.fromarray(rgb))
    from_bgr = encode_png(np.ascontiguousarray(rgb[:, :, ::-1]))
    assert from_pil == from_bgr
    with Image.open(io.BytesIO(from_pil)) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), rgb)


def test_stats_counts_the_groups_split_forms_and_bench_audits_the_same_groups(small_store) -> None:
    from benchmark.data import load_store_split
    from lrfp.split import SplitConfig, grouped_split, usable_crops

    crops, _ = usable_crops(small_store, SplitConfig())
    grouped_split(small_store, SplitConfig(dedupe="off"))
    assert collect_stats(small_store)["groups"] == len({c.group for c in crops}) == 12
    assert load_store_split(small_store.root).audit["leaked_groups"] == 0

    # Move one crop of a train group into test (what a hand-edited split would do): the bench's audit
    # names that group, by the key split gave it.
    subset_of = {r["id"]: r["subset"] for r in small_store.split_crops("default")}
    by_group: dict[str, list[int]] = {}
    for c in crops:
        by_group.setdefault(c.group, []).append(c.id)
    group, ids = next((g, ids) for g, ids in sorted(by_group.items()) if len(ids) > 1 and subset_of[ids[0]] == "train")
    with small_store.transaction() as conn:
        conn.execute("UPDATE split_assignments SET subset = 'test' WHERE crop_id = ?", (ids[0],))
    audit = load_store_split(small_store.root).audit
    assert audit["leaked_groups"] == 1 and audit["leaked_examples"] == [group]


def test_redo_keeps_a_crop_an_older_encoder_stored_with_its_label(smfd_dir: Path, tmp_path: Path) -> None:
    # Stores imported before encode_png was the one encoder hold PIL zlib-level-6 bytes. `--redo` decides
    # "identical" by pixels, so such a crop is kept with a person's label instead of being replaced.
    import shutil

    from lrfp.import_folder import ImportConfig, import_folder
    from lrfp.store import sha256_bytes

    folder = tmp_path / "in"
    for cls in ("with_mask", "without_mask"):
        (folder / cls).mkdir(parents=True)
        for src in sorted((smfd_dir / cls).glob("*.jpg"))[:2]:
            shutil.copy(src, folder / cls / src.name)
    cfg = ImportConfig(folder=folder, source="s", max_side=32)
    with open_store(tmp_path / "d") as store:
        import_folder(store, cfg)
        row = store.crops_with_labels()[0]
        with Image.open(store.crop_file(row)) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="PNG", optimize=False, compress_level=6)  # the old encoder
        old_png = buf.getvalue()
        assert old_png != store.crop_file(row).read_bytes()
        old_rel = f"crops/{sha256_bytes(old_png)[:2]}/{sha256_bytes(old_png)}.png"
        (store.root / old_rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / old_rel).write_bytes(old_png)
        store.crop_file(row).unlink()
        with store.transaction() as conn:  # the row as an older lrfp wrote it
            conn.execute("UPDATE crops SET path = ?, sha256 = ? WHERE id = ?", (old_rel, sha256_bytes(old_png), row["id"]))
        store.add_label(row["id"], "unusable", "ana")

        result = import_folder(store, ImportConfig(folder=folder, source="s", max_side=32, redo=True))
        assert result.replaced == 0 and result.unchanged == 4
        kept = store.crop(row["id"])
        assert kept["sha256"] == sha256_bytes(old_png) and store.current_label(row["id"]) == "unusable"
        assert store.count_crops() == 4
