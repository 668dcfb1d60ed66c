"""The CLI as a user meets it: help, version, exit codes, error messages, light start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["fetch", "label", "split", "publish", "bench", "import", "stats", "predict", "export", "review-labels"]
HEAVY = ["torch", "torchvision", "mediapipe", "textual", "datasets", "cv2", "yt_dlp", "huggingface_hub", "matplotlib"]


def lrfp(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lrfp", *args], capture_output=True, text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})}, cwd=cwd,
    )


def test_help_lists_every_command_with_one_line_help() -> None:
    r = lrfp("--help")
    assert r.returncode == 0
    for cmd in COMMANDS:
        assert any(line.strip(" │").startswith(f"{cmd} ") for line in r.stdout.splitlines()), cmd


def test_version() -> None:
    from lrfp import __version__

    r = lrfp("--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"lrfp {__version__}")


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\nfrom lrfp.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help_with_an_example_and_a_readme_entry(cmd: str) -> None:
    r = lrfp(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert "Example" in r.stdout
    assert "--data-dir" in r.stdout
    assert f"lrfp {cmd}" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("cmd", [*COMMANDS, "models pull", "models list"])
def test_help_paragraphs_wrap_at_the_terminal_width_and_examples_keep_their_lines(cmd: str) -> None:
    """A docstring's line breaks used to reach the terminal: at 80 columns a paragraph came out ragged."""
    from lrfp.cli import command

    click_cmd = command()
    for word in cmd.split():
        click_cmd = click_cmd.commands[word]
    wide = lrfp(*cmd.split(), "--help", env={"COLUMNS": "1000"}).stdout
    body, _, example = wide.partition("Example:")
    first, *rest = click_cmd.help.split("\n\n")
    for para in rest:
        if not para.startswith("Example:"):  # each prose paragraph is one line at a width it fits in
            assert " ".join(para.split()) in [" ".join(line.split()) for line in body.splitlines()], para
    example_lines = [line.rstrip() for line in example.splitlines() if line.strip().startswith("lrfp ")]
    assert example_lines and all(line.startswith("   lrfp ") for line in example_lines), example_lines


def test_data_dir_comes_from_the_environment(tmp_path: Path) -> None:
    r = lrfp("stats", env={"LRFP_DATA_DIR": str(tmp_path / "absent")})
    assert r.returncode == 2  # bad input: LRFP_DATA_DIR names no store
    assert r.stderr.strip() == (f"Error: no lrfp data directory at {tmp_path / 'absent'}: point -d (or LRFP_DATA_DIR) "
                                "at a store's folder, or make one with `lrfp import` or `lrfp fetch`")


def test_bad_input_prints_error_and_exits_2_without_traceback(tmp_path: Path) -> None:
    r = lrfp("import", str(tmp_path / "nope"), "--source", "x", "-d", str(tmp_path / "d"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"Error: folder {tmp_path / 'nope'} does not exist"
    assert "Traceback" not in r.stderr


def test_lrfp_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = lrfp("import", str(tmp_path / "nope"), "--source", "x", "-d", str(tmp_path / "d"), env={"LRFP_DEBUG": "1"})
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "InputError" in r.stderr


def test_usage_errors_exit_2() -> None:
    r = lrfp("no-such-command")
    assert r.returncode == 2
    assert "No such command" in r.stderr
    r = lrfp("import")
    assert r.returncode == 2


def test_newer_store_is_refused_by_the_cli(tmp_path: Path) -> None:
    import sqlite3

    from lrfp.store import open_store

    open_store(tmp_path / "d").close()
    con = sqlite3.connect(tmp_path / "d" / "lrfp.sqlite")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    r = lrfp("stats", "-d", str(tmp_path / "d"))
    assert r.returncode == 1
    assert "has schema version 99" in r.stderr and r.stderr.startswith("Error: ")


def test_import_then_stats_json_end_to_end(smfd_small, tmp_path: Path) -> None:
    folder, groups = smfd_small
    data = tmp_path / "d"
    r = lrfp("import", str(folder), "--source", "smfd", "--groups", str(groups), "--max-side", "40", "-d", str(data))
    assert r.returncode == 0, r.stderr
    assert "exact duplicates" in r.stdout
    r = lrfp("stats", "--json", "-d", str(data))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert {"crops", "labels", "splits", "sources"} <= set(s)
    assert s["crops"] == s["labels"]["with_mask"] + s["labels"]["without_mask"] > 0
    assert s["groups"] == 12
    assert s["sources"][0]["name"] == "smfd" and s["sources"][0]["status"] == "ok"
    assert s["face_px"]["shorter_side"]["max"] <= 40
    r = lrfp("stats", "-d", str(data))
    assert r.returncode == 0 and "smfd" in r.stdout
