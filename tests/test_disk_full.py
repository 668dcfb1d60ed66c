"""A full disk, from any command (tester's bug 10): `Error: the disk holding PATH is full (No space left on device):
free some space and rerun the same command (what was stored stays)`, exit 1, and no half-written output.

The real cases write on a small tmpfs (mounting one needs root, as tests/test_fetch_faults.py does; they skip
elsewhere); the others make the library's own write raise what the OS or SQLite raises on a full disk.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from bench_helpers import cli_run, split_store

FULL = "is full (No space left on device): free some space and rerun the same command (what was stored stays)"
FULL_OUT = FULL.replace("what was stored stays", "what was written before stays")
"""A command that writes only output files (publish, bench --out, export, predict): it stores nothing (tester's
bug 15 on predict --video-out)."""


@pytest.fixture
def tiny(tmp_path: Path):
    """A mount point for a tmpfs of a given size (root only); unmounted after the test."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        path = tmp_path / "tiny"
        path.mkdir()
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                               capture_output=True).returncode != 0:
            pytest.skip(f"needs root to mount a {size} tmpfs")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True)


def _left(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_import_onto_a_full_disk_names_the_store_and_keeps_it_readable(tiny, smfd_dir: Path, capsys) -> None:
    """The tester's case: SQLite's "database or disk is full" used to be `unexpected OperationalError`."""
    data = tiny("1500k") / "s2"
    code, _, err = cli_run(capsys, "import", "-d", str(data), str(smfd_dir), "--source", "smfd", "--max-side", "48")
    assert code == 1
    assert err == f"Error: the disk holding {data} {FULL}"
    from lrfp.store import open_store

    store = open_store(data)  # what was stored stays usable
    try:
        assert store.query("SELECT COUNT(*) AS n FROM crops")[0]["n"] < 1376
    finally:
        store.close()


def test_publish_onto_a_full_disk_leaves_no_folder(tiny, tmp_path: Path, smfd_dir: Path, capsys) -> None:
    data = split_store(tmp_path, smfd_dir, n_groups=40, max_side=48)
    con = sqlite3.connect(data / "lrfp.sqlite")
    con.execute("UPDATE sources SET license = 'cc-by-4.0'")
    con.commit()
    con.close()
    disk = tiny("100k")
    code, _, err = cli_run(capsys, "publish", "-d", str(data), "--out", str(disk / "pub"))
    assert code == 1
    assert err.startswith(f"Error: the disk holding {disk / 'pub'}") and err.endswith(FULL_OUT)
    assert _left(disk) == []


def test_bench_onto_a_full_disk_ends_the_run_instead_of_a_failed_row(tiny, tmp_path: Path, smfd_dir: Path, capsys) -> None:
    """A full disk is not the run's fault: it used to become a "failed run" row (exit 1 with the error in
    results.md), or `unexpected OSError`; and no temporary file stays."""
    data = split_store(tmp_path, smfd_dir, n_groups=12, max_side=32, split="s")
    out = tiny("120k") / "b"
    code, _, err = cli_run(capsys, "bench", "-d", str(data), "--split", "s", "--model", "model3", "--protocol",
                           "quick", "--epochs", "1", "--input-size", "16", "--out", str(out))
    assert code == 1
    assert err.startswith(f"Error: the disk holding {out}") and err.endswith(FULL_OUT)
    assert not [p for p in _left(out) if ".tmp" in p]


def test_split_when_sqlite_says_the_disk_is_full_names_the_store(small_store, monkeypatch, capsys) -> None:
    """No real disk needed: the store's write raises what SQLite raises on a full disk."""
    from lrfp.store import Store

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "save_split", full)
    code, _, err = cli_run(capsys, "split", "-d", str(small_store.root))
    assert (code, err) == (1, f"Error: the disk holding {small_store.root} {FULL}")


def test_an_error_wrapping_enospc_is_a_full_disk_not_bad_input(tmp_path: Path, monkeypatch, capsys) -> None:
    """`prepare_output_file` turns the OSError of mkdir into a UsageError (exit 2); on a full disk that would
    blame the user's path: exit 1 and the full-disk advice instead, naming the file the OS named."""
    import lrfp.paths

    real_mkdir = Path.mkdir

    def mkdir(self, *a, **k):
        if self.name == "deep":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(Exception) as e:
        lrfp.paths.prepare_output_file(tmp_path / "deep" / "m.onnx", ".onnx", "--out")
    from lrfp.cli import _run

    monkeypatch.setattr("lrfp.predict.run.run_export", lambda cfg: (_ for _ in ()).throw(e.value))
    code = _run(["export", "--checkpoint", str(tmp_path / "x.pt"), "-o", str(tmp_path / "deep" / "m.onnx")], False)
    err = capsys.readouterr().err
    assert code == 1
    assert f"Error: the disk holding {tmp_path / 'deep'} {FULL_OUT}" in err


def test_a_store_on_a_disk_that_filled_up_since_still_reads_and_refuses_writes_clearly(tiny, tmp_path: Path,
                                                                                       smfd_dir: Path, capsys) -> None:
    """SQLite cannot make its -shm file on a full disk and says "disk I/O error": every command used to call the
    store 'not a usable lrfp store'. A command that only reads now reads it; one that writes names the full disk."""
    disk = tiny("2m")
    images = tmp_path / "few"
    for cls in ("with_mask", "without_mask"):
        (images / cls).mkdir(parents=True)
        for src in sorted((smfd_dir / cls).glob("*.jpg"))[:6]:
            (images / cls / src.name).write_bytes(src.read_bytes())
    data = disk / "s"
    code, _, err = cli_run(capsys, "import", "-d", str(data), str(images), "--source", "few", "--max-side", "16")
    assert code == 0, err
    with open(disk / "filler", "wb") as fh:  # everything else the disk has
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    code, out, err = cli_run(capsys, "stats", "-d", str(data), "--json")
    assert code == 0, err
    import json

    assert json.loads(out)["crops"] == 12
    code, _, err = cli_run(capsys, "split", "-d", str(data))
    assert (code, err) == (1, f"Error: the disk holding {data} {FULL}")
    (disk / "filler").unlink()
    code, _, err = cli_run(capsys, "split", "-d", str(data), "--ratios", "0.5,0.25,0.25")
    assert "not a usable" not in err  # the store itself was fine all along
