"""scripts/quickstart.sh, the README's first command, as a user runs it: from a folder of their own, with a
manifest there, twice. Its setup step (pip) is replaced by a no-op and .venv/bin by wrappers of this test's Python;
the rest is the real script, the real lrfp and a real download from a server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fetch_helpers import STAGE_360, closed_port, serve, write_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repo's scripts with a .venv whose lrfp and python are this test's."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "quickstart.sh", root / "scripts")
    (root / "scripts" / "setup.sh").write_text("exit 0\n")  # the venv is there already
    bin_ = root / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name, cmd in (("python", f'"{sys.executable}"'), ("lrfp", f'"{sys.executable}" -m lrfp')):
        (bin_ / name).write_text(f'#!/bin/sh\nexec {cmd} "$@"\n')
        (bin_ / name).chmod(0o755)
    return root


def quickstart(repo: Path, cwd: Path, shared_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LRFP_MODELS_DIR": str(shared_dir / "models"), "XDG_CACHE_HOME": str(cwd / "cache"),
           "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    env.pop("LRFP_DATA_DIR", None)
    return subprocess.run(["bash", str(repo / "scripts" / "quickstart.sh"), *args, "--retries", "0"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def test_quickstart_from_the_users_folder_reads_their_manifest_stores_there_and_a_rerun_retries_failures(
        repo: Path, tmp_path: Path, shared_dir: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with serve(shared_dir / "data" / "videos") as base:
        write_manifest(work / "m.csv", [{"url": f"{base}/{STAGE_360}", "id": "stage"},
                                        {"url": f"http://127.0.0.1:{closed_port()}/gone.mp4", "id": "gone"}])
        first = quickstart(repo, work, shared_dir, "m.csv")
        assert first.returncode == 1, first.stderr  # a row failed
        assert "does not exist" not in first.stderr  # m.csv was read from the folder the script was run in
        assert (work / "lrfp-data" / "lrfp.sqlite").is_file() and not (repo / "lrfp-data").exists()
        assert "Next steps, from this folder" in first.stdout
        second = quickstart(repo, work, shared_dir, "m.csv")
    assert second.returncode == 1
    said = " ".join((second.stdout + second.stderr).split())
    assert "stage: ok earlier, skipped" in said
    assert "gone: download_failed earlier, skipped" not in said  # tried again, as the script's advice promises
    assert "gone: download_failed" in said


def test_quickstart_with_nothing_fetched_says_a_rerun_tries_again_and_a_bad_manifest_stops_it(
        repo: Path, tmp_path: Path, shared_dir: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_manifest(work / "m.csv", [{"url": f"http://127.0.0.1:{closed_port()}/gone.mp4", "id": "gone"}])
    r = quickstart(repo, work, shared_dir, "m.csv")
    assert r.returncode == 1
    assert "No crops to label yet: see the reasons above, then rerun this script (it tries the failed videos again)." in r.stdout
    (work / "bad.csv").write_text("title\nno url here\n")
    r = quickstart(repo, work, shared_dir, "bad.csv")
    assert r.returncode == 2 and "Error: " in r.stderr and "Traceback" not in r.stderr
