"""`lrfp import` on real SMFD files, and every bad input the foundation issue names."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from lrfp.errors import DataDirError, InputError, UsageError
from lrfp.images import encode_png
from lrfp.import_folder import ImportConfig, import_folder, parse_class_map
from lrfp.stats import collect_stats
from lrfp.store import open_store


def run_import(data: Path, folder: Path, **kw) -> "object":
    with open_store(data) as s:
        return import_folder(s, ImportConfig(folder=folder, source=kw.pop("source", "src"), **kw))


def distinct_files(folder: Path) -> int:
    return len({hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.jpg")})


def signal_once_stored(proc: subprocess.Popen, data: Path, n_crops: int, sig: int) -> None:
    """Send `sig` to a running `lrfp import` as soon as its store holds n_crops crops (within 2 minutes)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            con = sqlite3.connect(data / "lrfp.sqlite", timeout=5)
            stored = con.execute("SELECT COUNT(*) FROM crops").fetchone()[0]
            con.close()
        except sqlite3.OperationalError:  # the store is not created yet
            continue
        if stored >= n_crops:
            proc.send_signal(sig)
            return


def test_whole_smfd_imports_with_duplicates_and_groups_and_reimport_adds_nothing(smfd_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "d"
    groups = smfd_dir / "smfd_groups.csv"
    r = run_import(data, smfd_dir, source="smfd", groups_csv=groups, max_side=64)
    assert r.files == 1376
    assert r.duplicates == 97  # SOURCE.md: 46 + 51 files repeat the bytes of another file
    assert r.imported == 1376 - 97 and not r.skipped
    assert dict(r.per_label) == {"with_mask": 644, "without_mask": 635}
    with open_store(data) as s:
        assert s.query("SELECT COUNT(DISTINCT group_id) FROM crops")[0][0] == 504
        assert s.query("SELECT MAX(MAX(width, height)) FROM crops")[0][0] <= 64
        assert s.source("smfd")["license"] is None
    again = run_import(data, smfd_dir, source="smfd", groups_csv=groups, max_side=64)
    assert (again.imported, again.duplicates, again.already_imported) == (0, 0, 1376)
    with open_store(data) as s:
        assert s.count_crops() == 1279
        assert s.query("SELECT COUNT(*) FROM labels")[0][0] == 1279


def test_stored_crops_are_rgb_png_at_their_own_resolution(smfd_small, tmp_path: Path) -> None:
    folder, _ = smfd_small
    data = tmp_path / "d"
    run_import(data, folder, license="CC-BY-4.0")
    with open_store(data) as s:
        rows = s.query("SELECT * FROM crops")
        assert len(rows) == distinct_files(folder)
        for row in rows:
            with Image.open(s.crop_file(row)) as im:
                assert im.format == "PNG" and im.mode == "RGB"
                assert im.size == (row["width"], row["height"])
            original = Image.open(folder / row["original"])
            assert im.size == original.size
        assert s.source("src")["license"] == "CC-BY-4.0"


def test_exact_duplicates_are_stored_once_and_counted(smfd_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "with_mask").mkdir(parents=True)
    src = next((smfd_dir / "with_mask").glob("*.jpg"))
    shutil.copy(src, folder / "with_mask" / "a.jpg")
    shutil.copy(src, folder / "with_mask" / "b.jpg")
    r = run_import(tmp_path / "d", folder)
    assert (r.imported, r.duplicates) == (1, 1)


def test_same_bytes_in_two_classes_is_a_reported_conflict(smfd_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    for cls in ("with_mask", "without_mask"):
        (folder / cls).mkdir(parents=True)
        shutil.copy(next((smfd_dir / "with_mask").glob("*.jpg")), folder / cls / "x.jpg")
    r = run_import(tmp_path / "d", folder)
    assert r.imported == 1
    assert r.skipped == [("without_mask/x.jpg", "same bytes as src/with_mask/x.jpg, which is labeled with_mask")]


def test_the_summary_groups_conflicts_and_points_to_where_every_skipped_file_is_listed(
    smfd_dir: Path, tmp_path: Path, capsys,
) -> None:
    """Tester's bug 11: each "same bytes as X" was its own reason row, and "23 more (see `lrfp stats`)" pointed to
    a command that lists no skipped file. Now: one row per kind of reason, and `--verbose` lists every file."""
    from lrfp.cli import main

    folder = tmp_path / "f"
    for cls in ("with_mask", "without_mask"):
        (folder / cls).mkdir(parents=True)
    for src in sorted((smfd_dir / "with_mask").glob("*.jpg"))[:3]:  # the same bytes in both classes: 3 conflicts
        for cls in ("with_mask", "without_mask"):
            shutil.copy(src, folder / cls / src.name)
    for i in range(10):
        (folder / "with_mask" / f"note{i:02d}.txt").write_text("not a picture")

    def summary(*extra: str) -> str:
        with pytest.raises(SystemExit) as e:
            main(["import", str(folder), "--source", "src", "-d", str(tmp_path / "d"), *extra])
        assert e.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    said = summary()
    assert "same bytes as a file imported with another label │ 3" in said and "not an image │ 10" in said
    assert "3 more: rerun the same command with --verbose to list every skipped file" in said
    assert "lrfp stats" not in said
    said = summary("--verbose")  # a rerun tries the skipped files again
    assert "skipped │ 13" in said and "more:" not in said
    assert all(f"with_mask/note{i:02d}.txt" in said for i in range(10))
    assert said.count(", which is labeled with_mask") == 3


def test_non_images_and_corrupt_images_are_skipped_with_reasons(smfd_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "with_mask").mkdir(parents=True)
    good = next((smfd_dir / "with_mask").glob("*.jpg"))
    shutil.copy(good, folder / "with_mask" / "good.jpg")
    (folder / "with_mask" / "notes.txt").write_text("not a picture")
    data = good.read_bytes()
    (folder / "with_mask" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    png = bytearray(encode_png(Image.effect_noise((64, 64), 60).convert("RGB")))
    png[len(png) // 2 : len(png) // 2 + 40] = b"\xff" * 40  # damage the compressed pixel data
    (folder / "with_mask" / "damaged.png").write_bytes(bytes(png))
    (folder / "with_mask" / "empty.jpg").write_bytes(b"")
    r = run_import(tmp_path / "d", folder)
    assert r.imported == 1
    reasons = dict(r.skipped)
    assert reasons["with_mask/notes.txt"] == "not an image"
    assert reasons["with_mask/truncated.jpg"].startswith("corrupt or truncated image")
    assert reasons["with_mask/damaged.png"].startswith("corrupt or truncated image")
    assert reasons["with_mask/empty.jpg"] == "not an image"
    assert r.skipped_reasons == {"not an image": 2, "corrupt or truncated image": 2}
    with open_store(tmp_path / "d") as s:
        assert s.count_crops() == 1


def test_missing_empty_and_unmapped_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"folder .*/nope does not exist"):
        run_import(tmp_path / "d", tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="has no class subfolders: expected with_mask/, without_mask/"):
        run_import(tmp_path / "d", empty)
    (empty / "masked").mkdir()
    with pytest.raises(InputError, match=r"subfolder\(s\) masked not mapped to a class; use --map masked=with_mask"):
        run_import(tmp_path / "d", empty)


def test_map_renames_class_folders_and_ignore_skips_one(smfd_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    for sub, cls in (("mask", "with_mask"), ("nomask", "without_mask"), ("other", "with_mask")):
        (folder / sub).mkdir(parents=True)
        shutil.copy(sorted((smfd_dir / cls).glob("*.jpg"))[len(sub)], folder / sub / "x.jpg")
    r = run_import(tmp_path / "d", folder, class_map=parse_class_map(["mask=with_mask", "nomask=without_mask", "other=ignore"]))
    assert dict(r.per_label) == {"with_mask": 1, "without_mask": 1}
    with pytest.raises(InputError, match="expected FOLDER=LABEL"):
        parse_class_map(["mask"])
    with pytest.raises(InputError, match="label must be one of with_mask, without_mask, ignore"):
        parse_class_map(["mask=masked"])


def test_groups_csv_with_missing_columns_or_unknown_files(smfd_small, tmp_path: Path) -> None:
    folder, groups = smfd_small
    bad = tmp_path / "bad.csv"
    bad.write_text("name,group\nx.jpg,1\n")
    with pytest.raises(InputError, match=r"missing column\(s\) file, group_id \(found: name, group; need file,group_id\)"):
        run_import(tmp_path / "d", folder, groups_csv=bad)
    unknown = tmp_path / "unknown.csv"
    rows = list(csv.DictReader(open(groups)))
    with open(unknown, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["class", "file", "group_id"])
        w.writeheader()
        w.writerows(rows + [{"class": "with_mask", "file": "ghost.jpg", "group_id": "9"}])
    with pytest.raises(InputError, match=r"1 row\(s\) name files not in the folder: with_mask/ghost.jpg \(line \d+\)"):
        run_import(tmp_path / "d", folder, groups_csv=unknown)
    with pytest.raises(InputError, match="does not exist"):
        run_import(tmp_path / "d", folder, groups_csv=tmp_path / "missing.csv")
    with open_store(tmp_path / "d") as s:  # nothing was imported by the refused runs
        assert s.count_crops() == 0


def test_groups_csv_by_bare_file_name(smfd_small, tmp_path: Path) -> None:
    folder, groups = smfd_small
    plain = tmp_path / "plain.csv"
    rows = list(csv.DictReader(open(groups)))
    with open(plain, "w", newline="") as fh:
        fh.write("file,group_id\n")
        for r in rows:
            fh.write(f"{r['class']}/{r['file']},g{r['group_id']}\n")
    run_import(tmp_path / "d", folder, groups_csv=plain)
    with open_store(tmp_path / "d") as s:
        gids = {r[0] for r in s.query("SELECT group_id FROM crops")}
    assert gids == {f"src:g{r['group_id']}" for r in rows}


def test_same_source_name_for_another_folder_is_refused(smfd_small, tmp_path: Path) -> None:
    folder, _ = smfd_small
    run_import(tmp_path / "d", folder, source="s")
    other = tmp_path / "other"
    shutil.copytree(folder, other, symlinks=True)
    with pytest.raises(InputError, match=r"source 's' already exists in the store for .*smfd_small; pick another --source name"):
        run_import(tmp_path / "d", other, source="s")


def test_unwritable_data_dir_is_refused_before_anything(smfd_small, tmp_path: Path) -> None:
    folder, _ = smfd_small
    with pytest.raises(DataDirError, match="is not writable"):
        run_import(Path("/sys/kernel") if os.geteuid() == 0 else Path("/"), folder)


def test_kill_during_import_then_rerun_completes_without_duplicates(smfd_dir: Path, tmp_path: Path) -> None:
    from conftest import smfd_subset

    folder, groups = smfd_subset(smfd_dir, tmp_path / "src", n_groups=60, seed=3)
    data = tmp_path / "d"
    cmd = [sys.executable, "-m", "lrfp", "import", str(folder), "--source", "s", "--groups", str(groups), "-d", str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signal_once_stored(proc, data, 10, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed: use more files"
    shown = subprocess.run([sys.executable, "-m", "lrfp", "stats", "-d", str(data)], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "400"})
    assert shown.returncode == 0, shown.stderr
    assert ("left `importing` by an `lrfp import` that stopped before it finished (Ctrl-C, kill, a crash); no import "
            "is running on this store now: rerun the same import to finish it") in shown.stdout

    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open_store(data) as s:
        source = collect_stats(s)["sources"][0]
    assert (source["status"], source["left_by_stopped_run"]) == ("ok", False)
    with open_store(data) as s:
        rows = s.query("SELECT * FROM crops")
        assert len(rows) == distinct_files(folder)
        assert len({r["sha256"] for r in rows}) == len(rows)
        assert s.query("SELECT COUNT(*) FROM imported_files")[0][0] == len(list(folder.rglob("*.jpg")))
        assert s.query("SELECT COUNT(*) FROM labels")[0][0] == len(rows)
        for r in rows:
            path = s.crop_file(r)
            assert hashlib.sha256(path.read_bytes()).hexdigest() == r["sha256"]
            with Image.open(path) as im:
                im.load()
        assert not list(data.rglob("*.tmp"))


def test_ctrl_c_during_import_keeps_what_was_stored_and_says_so(smfd_dir: Path, tmp_path: Path) -> None:
    from conftest import smfd_subset

    folder, _ = smfd_subset(smfd_dir, tmp_path / "src", n_groups=60, seed=4)
    data = tmp_path / "d"
    cmd = [sys.executable, "-m", "lrfp", "import", str(folder), "--source", "s", "-d", str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    signal_once_stored(proc, data, 5, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Interrupted: what was stored stays; rerun the same command to finish."
    with open_store(data) as s:
        kept = s.count_crops()
    assert kept >= 5
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open_store(data) as s:
        assert s.count_crops() == distinct_files(folder)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "  "}, "--source '  ' contains ' ': use letters, digits, '.', '_' or '-' (at most 80, starting with a letter or digit)"),
        ({"max_side": 0}, "--max-side 0: must be at least 8 (px)"),
        ({"class_map": {"mask": "masked"}}, "--map mask=masked: label must be one of with_mask, without_mask, ignore"),
    ],
)
def test_import_checks_its_config_first_and_stores_nothing(smfd_dir: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    # A library caller's config is checked at the top of import_folder (the CLI checks it before the store exists).
    with open_store(tmp_path / "d") as store:
        with pytest.raises((InputError, UsageError)) as e:
            import_folder(store, ImportConfig(**{"folder": smfd_dir, "source": "smfd", **kwargs}))
        assert str(e.value) == message
        assert store.count_crops() == 0 and store.sources() == []


def test_cli_import_with_an_empty_source_exits_2_and_creates_no_store(smfd_dir: Path, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "lrfp", "import", str(smfd_dir), "--source", "", "-d", str(tmp_path / "d")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: --source '' is empty: use letters, digits, '.', '_' or '-' (at most 80, starting with a letter or digit)")
    assert not (tmp_path / "d").exists()


def test_a_license_given_on_reimport_is_recorded_and_unblocks_publish(smfd_small, tmp_path: Path) -> None:
    """`lrfp publish` refuses a source with no license and advises `lrfp import ... --license`: on a folder
    already imported, that records the license without importing anything again."""
    from lrfp.errors import PublishError
    from lrfp.publish.export import check_licenses

    folder, _ = smfd_small
    data = tmp_path / "d"
    first = run_import(data, folder)
    with open_store(data) as s:
        with pytest.raises(PublishError, match=r"`lrfp import \.\.\. --license`"):
            check_licenses(s, [{"source_name": "src"}], annotations_only=False)
        crops = s.query("SELECT id, sha256 FROM crops ORDER BY id")
    again = run_import(data, folder, license="CC-BY-4.0")
    assert (again.imported, again.already_imported) == (0, first.imported + first.duplicates)
    with open_store(data) as s:
        assert s.source("src")["license"] == "CC-BY-4.0"
        assert [tuple(r) for r in s.query("SELECT id, sha256 FROM crops ORDER BY id")] == [tuple(r) for r in crops]
        check_licenses(s, [{"source_name": "src"}], annotations_only=False)  # no longer refused
    run_import(data, folder)  # no --license: the recorded one stays
    with open_store(data) as s:
        assert s.source("src")["license"] == "CC-BY-4.0"


def test_the_cli_says_a_license_given_on_reimport_was_recorded(smfd_small, tmp_path: Path, capsys) -> None:
    """A new user added --license to an imported folder: it was stored, but the CLI said nothing about it."""
    from lrfp.cli import main

    folder, _ = smfd_small
    data = tmp_path / "d"

    def cli(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as e:
            main(["import", str(folder), "--source", "smfd", "-d", str(data), *argv])
        cap = capsys.readouterr()
        return e.value.code, cap.out, cap.err

    code, _, err = cli()
    assert code == 0 and "license recorded" not in err
    code, _, err = cli("--license", "CC-BY-4.0")
    assert code == 0
    assert "license recorded for smfd: CC-BY-4.0 (not re-imported: the crops do not depend on it)" in " ".join(err.split())
    code, _, err = cli("--license", "CC-BY-4.0")  # the same license again: nothing new to say
    assert code == 0 and "license recorded" not in err
    with open_store(data) as s:
        assert s.source("smfd")["license"] == "CC-BY-4.0"
