"""Faults under a store and of the machine (issue 11): damaged crops, read-only stores, exit codes, pipes, modes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lrfp.errors import CropFileError
from lrfp.split import SplitConfig, grouped_split
from lrfp.store import open_store

REPO = Path(__file__).resolve().parents[1]


def lrfp(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrfp", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LRFP_DEBUG": "", **(env or {})}, cwd=cwd)


def damage(store) -> tuple[dict, dict]:
    """Delete one crop's file and truncate another's, as a user's cleanup or a full disk would."""
    rows = store.query("SELECT id, path FROM crops ORDER BY id")
    gone, cut = dict(rows[0]), dict(rows[1])
    (store.root / gone["path"]).unlink()
    data = (store.root / cut["path"]).read_bytes()
    (store.root / cut["path"]).write_bytes(data[: len(data) // 2])
    return gone, cut


def test_split_and_publish_name_a_missing_crop_and_stats_lists_it(small_store, tmp_path):
    grouped_split(small_store, SplitConfig(seed=0, dedupe="off", hash_distance=0))
    labels_before = small_store.query("SELECT COUNT(*) AS n FROM labels")[0]["n"]
    small_store.upsert_source("smfd", "folder", license="local-test-only")  # publish wants one; written locally only
    gone, cut = damage(small_store)
    d = str(small_store.root)
    hint = ("restore it from a backup of the store, or rerun `lrfp import` of its folder with --redo (it writes "
            "the crop again); `lrfp stats` lists every missing or damaged crop file")
    r = lrfp("split", "-d", d, "--name", "again")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error: crop {gone['id']} ({gone['path']}): file {small_store.root / gone['path']} is missing under the store; {hint}")
    r = lrfp("publish", "-d", d, "--out", str(tmp_path / "hub"), "--annotations-only")
    assert r.returncode == 0  # no pixels needed
    r = lrfp("publish", "-d", d, "--out", str(tmp_path / "hub2"))
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 1 and "unexpected" not in last
    assert last.startswith("Error: crop ") and last.endswith(hint)
    assert not (tmp_path / "hub2").exists()
    r = lrfp("stats", "-d", d, "--json")
    import json

    files = json.loads(r.stdout)["crop_files"]
    assert (r.returncode, files["missing"], files["damaged"]) == (0, 1, 1)
    assert {p["crop_id"]: p["problem"] for p in files["problems"]} == {gone["id"]: "missing", cut["id"]: "damaged"}
    assert small_store.query("SELECT COUNT(*) AS n FROM labels")[0]["n"] == labels_before  # nothing lost


def test_a_lost_fetched_crop_is_said_to_be_beyond_a_rerun(small_store):
    """The hint offered only the import route; for a fetched crop no rerun writes the file again (a known sha256's
    file is never rewritten, and `fetch --redo` keeps labeled and split crops as they are): it says so. (The
    store's one source is made a video source in its index: only the message's choice is under test.)"""
    from lrfp.crop_files import read_crop_bytes

    small_store.conn.execute("UPDATE sources SET kind = 'video'")
    small_store.conn.commit()
    gone, _ = damage(small_store)
    with pytest.raises(CropFileError) as e:
        read_crop_bytes(small_store.root, gone)
    assert str(e.value) == (
        f"crop {gone['id']} ({gone['path']}): file {small_store.root / gone['path']} is missing under the store; restore "
        "it from a backup of the store: lrfp cannot make a fetched crop again (`lrfp fetch --redo` keeps labeled and "
        "split crops as they are, and writes no file for a crop the store already holds); `lrfp stats` lists every "
        "missing or damaged crop file")


def test_bench_loader_raises_a_typed_error_for_a_truncated_crop(small_store):
    from benchmark.data import load_store_split

    grouped_split(small_store, SplitConfig(seed=0, dedupe="off", hash_distance=0))
    rows = small_store.query("SELECT id, path FROM crops ORDER BY id")
    victim = small_store.root / rows[0]["path"]
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.raises(CropFileError) as e:
        load_store_split(small_store.root)
    assert str(e.value).startswith(f"crop {rows[0]['id']} ({rows[0]['path']}): file {victim} is damaged: ")


def test_import_redo_writes_a_deleted_crop_again(capsys, tmp_path, smfd_small):
    from lrfp.cli import main

    folder, _ = smfd_small
    d = str(tmp_path / "d")
    for argv in (["import", str(folder), "--source", "s", "-d", d, "--max-side", "32"],):
        with pytest.raises(SystemExit):
            main(argv)
    with open_store(d, create=False) as s:
        row = s.query("SELECT * FROM crops ORDER BY id")[0]
        s.crop_file(row).unlink()
    with pytest.raises(SystemExit) as e:
        main(["import", str(folder), "--source", "s", "-d", d, "--max-side", "32", "--redo"])
    assert e.value.code == 0
    with open_store(d, create=False) as s:
        assert s.crop_file(row).exists() and s.count_crops() == len(s.query("SELECT * FROM crops"))


def _can_mount_read_only(src: Path, dst: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{src}' '{dst}' && ! touch '{dst}/x'"],
                       capture_output=True)
    return r.returncode == 0


def test_a_store_on_a_read_only_mount_reads_and_refuses_writes_clearly(small_store, tmp_path):
    """A real read-only bind mount in a private mount namespace (root ignores chmod, not a ro mount)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    small_store.close()
    if not _can_mount_read_only(small_store.root, mnt):
        pytest.skip("needs `unshare -m` and `mount --bind -o ro` (a private mount namespace) on this machine")
    before = {p.name: p.read_bytes() for p in small_store.root.iterdir() if p.is_file()}
    py = sys.executable
    script = (f"mount --bind -o ro '{small_store.root}' '{mnt}' && "
              f"'{py}' -m lrfp stats -d '{mnt}' --json > '{tmp_path}/stats.json' 2> '{tmp_path}/stats.err'; "
              f"echo $? > '{tmp_path}/stats.rc'; '{py}' -m lrfp split -d '{mnt}' 2> '{tmp_path}/split.err'; "
              f"echo $? > '{tmp_path}/split.rc'")
    subprocess.run(["unshare", "-m", "sh", "-c", script], env={**os.environ, "LRFP_DEBUG": ""}, timeout=300)
    import json

    assert (tmp_path / "stats.rc").read_text().strip() == "0", (tmp_path / "stats.err").read_text()
    assert json.loads((tmp_path / "stats.json").read_text())["crops"] > 0
    assert (tmp_path / "split.rc").read_text().strip() == "1"
    assert (tmp_path / "split.err").read_text().strip() == (
        f"Error: data directory {mnt} is not writable (Read-only file system): this command writes to the store. "
        "Commands that only read it (lrfp stats, lrfp publish, lrfp bench) still work; to change it, copy the "
        "folder to a writable place or remount it read-write")
    assert {p.name: p.read_bytes() for p in small_store.root.iterdir() if p.is_file()} == before


def test_read_only_open_writes_nothing(small_store):
    """SQLite's read-only mode (URI mode=ro): what stats/publish/bench use. Root could write anyway, so this
    checks that lrfp itself writes nothing: the database file is byte-identical afterwards and a write is refused
    (SQLite may add its WAL index files -shm/-wal beside it on a writable folder; those hold no data)."""
    import sqlite3

    small_store.close()
    before = {p.name: p.read_bytes() for p in small_store.root.iterdir() if p.is_file()}
    with open_store(small_store.root, create=False, read_only=True) as s:
        assert s.count_crops() > 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            s.conn.execute("DELETE FROM labels")
    after = {p.name: p.read_bytes() for p in small_store.root.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if not k.endswith(("-shm", "-wal"))} == before


@pytest.mark.parametrize("args, message", [
    (["publish", "--repo-id", "not a repo"],
     "Error: --repo-id 'not a repo' is not a Hub dataset id: expected USER/NAME made of letters, digits, '-', '_' "
     "and '.', e.g. jdoe/low-res-faces-peru"),
    (["publish", "--split", "nope"], "Error: nothing to publish: no split named 'nope' (known: none)"),
    (["publish", "--pretty-name", " "], "Error: --pretty-name must not be empty (it is the dataset card's title)"),
    (["split", "--name", "a/b"],
     "Error: --name 'a/b' contains '/': use letters, digits, '.', '_' or '-' (at most 80, starting with a letter or digit)"),
    (["label", "--source", "zzz"], "Error: no source named 'zzz' in the store (known: smfd)"),
])
def test_bad_input_exits_2(small_store, tmp_path, args, message):
    small_store.close()
    r = lrfp(*args, "-d", str(small_store.root))
    assert (r.returncode, r.stderr.strip().splitlines()[-1]) == (2, message)


def test_publish_out_not_empty_and_out_a_file_exit_2(small_store, tmp_path):
    grouped_split(small_store, SplitConfig(seed=0, dedupe="off", hash_distance=0))
    small_store.close()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = lrfp("publish", "-d", str(small_store.root), "--out", str(tmp_path / "full"), "--annotations-only")
    assert r.returncode == 2
    assert r.stderr.strip().endswith("is not empty (1 entries); use --overwrite to replace its README.md and data/")


def test_publish_out_gets_the_mode_of_a_plain_mkdir(small_store, tmp_path):
    grouped_split(small_store, SplitConfig(seed=0, dedupe="off", hash_distance=0))
    small_store.close()
    old = os.umask(0o022)
    try:
        r = lrfp("publish", "-d", str(small_store.root), "--out", str(tmp_path / "new"), "--annotations-only")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755  # was 0700 (tempfile.mkdtemp)
    assert (tmp_path / "new" / "data").stat().st_mode & 0o777 == 0o755


def test_piped_output_is_not_wrapped_whatever_columns_says(small_store):
    small_store.close()
    r = lrfp("stats", "-d", str(small_store.root), env={"COLUMNS": "40"})
    assert r.returncode == 0
    line = next(x for x in r.stdout.splitlines() if "face px bands" in x)
    assert "<24: 0  24-32: 0  32-48:" in line  # one line, not folded at 40 (or 80) columns


def test_help_shows_no_type_after_flags():
    from lrfp.cli import command

    def walk(cmd):
        yield cmd
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub)

    import click

    flags = 0
    for cmd in walk(command()):
        assert cmd.get_help_option(click.Context(cmd)).metavar == "", cmd.name  # -h/--help too
        for p in cmd.params:
            if getattr(p, "is_flag", False):
                flags += 1
                assert p.metavar == "", (cmd.name, p.name)
    assert flags > 10
    r = lrfp("label", "--help", env={"COLUMNS": "200"})
    assert "<bool>" not in r.stdout and "--shuffle" in r.stdout


def test_pyproject_license_is_an_spdx_string():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"


@pytest.mark.parametrize("argv, message", [
    (["import", "IN", "--source", "s", "--max-side", "32", "--max-side", "48"],
     "Error: --max-side 32 and --max-side 48 contradict each other: give the option once"),
    (["split", "--seed", "1", "--seed=2"], "Error: --seed 1 and --seed 2 contradict each other: give the option once"),
    (["label", "--source", "a", "--source", "b"],
     "Error: --source a and --source b contradict each other: give the option once"),
])
def test_a_single_value_option_given_twice_differently_is_refused(capsys, tmp_path, argv, message):
    from lrfp.cli import main

    argv = [str(tmp_path) if a == "IN" else a for a in argv] + ["-d", str(tmp_path / "d")]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert (e.value.code, capsys.readouterr().err.strip()) == (2, message)
    assert not (tmp_path / "d").exists()


def test_the_same_value_twice_is_fine():
    from lrfp.cli import command, refuse_conflicting_repeats

    refuse_conflicting_repeats(command(), ["split", "--seed", "1", "--seed=1", "--balance", "--balance"])
