"""`lrfp import --redo`: a person's labels and saved splits survive it, and a stopped redo is finished by a rerun."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lrfp.errors import SplitError
from lrfp.import_folder import REDO_KEY, ImportConfig, import_folder
from lrfp.split import SplitConfig, grouped_split
from lrfp.stats import collect_stats
from lrfp.store import open_store


def tree(root: Path, smfd: Path, n: int) -> Path:
    for cls in ("with_mask", "without_mask"):
        (root / cls).mkdir(parents=True)
        for src in sorted((smfd / cls).glob("*.jpg"))[:n]:
            (root / cls / src.name).write_bytes(src.read_bytes())
    return root


def run(data: Path, folder: Path, source: str = "s", **kw):
    with open_store(data) as s:
        return import_folder(s, ImportConfig(folder=folder, source=source, **kw))


def file_crops(s) -> dict[str, list[int]]:
    """relative path -> ids of the crops made from that file (crops.original)."""
    out: dict[str, list[int]] = {}
    for r in s.query("SELECT id, original FROM crops ORDER BY id"):
        out.setdefault(r["original"], []).append(r["id"])
    return out


def test_redo_carries_a_persons_labels_and_keeps_crops_a_split_holds(smfd_dir: Path, tmp_path: Path) -> None:
    folder = tree(tmp_path / "in", smfd_dir, n=6)
    fa = "with_mask/" + sorted(p.name for p in (folder / "with_mask").iterdir())[0]
    fb = "without_mask/" + sorted(p.name for p in (folder / "without_mask").iterdir())[0]
    data = tmp_path / "d"
    run(data, folder, max_side=48)
    with open_store(data) as s:
        a, b = file_crops(s)[fa][0], file_crops(s)[fb][0]
        s.add_label(a, "unusable", "ana")
        s.add_label(b, "with_mask", "ben")
        s.add_label(b, "without_mask", "cy", kind="review")
        ana_at = s.label_history(a)[-1]["created_at"]
        grouped_split(s, SplitConfig(seed=1))
        in_split = {r["id"] for r in s.split_crops(s.resolve_split())}
    assert b in in_split and a not in in_split  # `unusable` is left out of splits

    r = run(data, folder, max_side=32, redo=True)
    assert (r.imported, r.labels_carried, r.kept_for_splits, r.replaced) == (12, 2, len(in_split), 12 - len(in_split))
    with open_store(data) as s:  # stats says which of its crops are only kept for the split
        shown = collect_stats(s)
    assert (shown["crops"], shown["kept_for_splits"]) == (12 + len(in_split), len(in_split))
    with open_store(data) as s:
        new = {orig: ids[-1] for orig, ids in file_crops(s).items()}
        assert all(max(s.crop(i)["width"], s.crop(i)["height"]) <= 32 for i in new.values())
        assert set(new.values()).isdisjoint(in_split)
        # a person's label is on the file's new crop, with who gave it and when; a review too
        assert [(e["label"], e["annotator"], e["kind"]) for e in s.label_history(new[fa])] == [
            ("with_mask", "import:s", "import"), ("unusable", "ana", "label")]
        assert s.label_history(new[fa])[-1]["created_at"] == ana_at
        assert s.current_label(new[fb]) == "with_mask"
        assert [e["annotator"] for e in s.label_history(new[fb])] == ["import:s", "ben", "cy"]
        assert s.current_label(new[fa]) == "unusable"
        # the saved split holds every crop it held, with its labels
        assert {r["id"] for r in s.split_crops(s.resolve_split())} == in_split
        assert s.current_label(b) == "with_mask"
        # a new split uses the new crops only; after it, a plain rerun removes the old ones
        grouped_split(s, SplitConfig(seed=1))
        assert {r["id"] for r in s.split_crops(s.resolve_split())} <= set(new.values())
    again = run(data, folder, max_side=32)
    assert (again.imported, again.already_imported, again.replaced, again.kept_for_splits) == (0, 12, len(in_split), 0)
    with open_store(data) as s:
        assert all(len(ids) == 1 for ids in file_crops(s).values()) and s.count_crops() == 12
        assert s.current_label(new[fa]) == "unusable"
    assert len(list((data / "crops").rglob("*.png"))) == 12


@pytest.mark.slow  # ~10 s: three imports of 60 groups and a subprocess
def test_a_redo_killed_midway_is_finished_by_a_plain_rerun_as_one_clean_redo(smfd_dir: Path, tmp_path: Path) -> None:
    from conftest import smfd_subset
    from test_import import signal_once_stored

    folder, groups = smfd_subset(smfd_dir, tmp_path / "src", n_groups=60, seed=5)  # enough files that the redo is still running when it is killed
    data, clean = tmp_path / "d", tmp_path / "clean"
    run(data, folder, groups_csv=groups, max_side=48)
    shutil.copytree(data, clean)
    with open_store(data) as s:
        n_old = s.count_crops()
        first = s.query("SELECT id FROM crops ORDER BY id LIMIT 1")[0]["id"]
        s.add_label(first, "unusable", "ana")
    with open_store(clean) as s:
        s.add_label(first, "unusable", "ana")
    expected = run(clean, folder, groups_csv=groups, max_side=32, redo=True)

    cmd = [sys.executable, "-m", "lrfp", "import", str(folder), "--source", "s", "--groups", str(groups),
           "-d", str(data), "--max-side", "32"]
    proc = subprocess.Popen(cmd + ["--redo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signal_once_stored(proc, data, n_old + 10, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the redo finished before it could be killed: use more files"
    with open_store(data) as s:
        assert n_old + 10 <= s.count_crops() < 2 * n_old  # old and new crops side by side
    old_settings = subprocess.run(cmd[:-1] + ["48"], capture_output=True, text=True)
    assert old_settings.returncode == 2
    assert ("Error: source 's': an `lrfp import --redo` with --max-side 32 was stopped before it finished, and this run "
            "asks for --max-side 48. Rerun with --max-side 32 (no --redo needed) to finish it, or with --redo") in \
        " ".join(old_settings.stderr.split())

    with open_store(data) as s, pytest.raises(SplitError, match=r"an `lrfp import --redo` of source\(s\) s is under "
                                                             r"way or was stopped before it finished"):
        grouped_split(s, SplitConfig(seed=0))  # old and new crops of one file would be split as two

    resumed = run(data, folder, groups_csv=groups, max_side=32)  # the same settings, no --redo
    assert resumed.resumed_redo
    counts = ("imported", "unchanged", "duplicates", "replaced", "labels_carried", "kept_for_splits", "already_imported")
    assert {k: getattr(resumed, k) for k in counts} == {k: getattr(expected, k) for k in counts}
    assert resumed.labels_carried == 1 and resumed.already_imported == 0
    with open_store(data) as s, open_store(clean) as c:
        assert all(len(ids) == 1 for ids in file_crops(s).values())
        assert sorted(r["sha256"] for r in s.query("SELECT sha256 FROM crops")) == \
            sorted(r["sha256"] for r in c.query("SELECT sha256 FROM crops"))
        assert s.query("SELECT COUNT(*) FROM labels WHERE annotator = 'ana'")[0][0] == 1
        assert s.get_setting(REDO_KEY + "s") is None and s.source("s")["status"] == "ok"
    done = run(data, folder, groups_csv=groups, max_side=32)
    assert (done.resumed_redo, done.imported, done.already_imported) == (False, 0, expected.files)
    with open_store(data) as s:
        assert grouped_split(s, SplitConfig(seed=0)).assignments  # the redo finished: the store splits again


def test_a_second_import_of_the_same_source_is_refused_while_one_runs(smfd_dir: Path, tmp_path: Path,
                                                                      monkeypatch) -> None:
    """Two `--redo` of one source with other settings at once used to leave crops of both (and exit 0 twice)."""
    from conftest import smfd_subset

    from lrfp import run_lock
    from lrfp.run_lock import StoreBusyError

    folder, groups = smfd_subset(smfd_dir, tmp_path / "src", n_groups=300, seed=6)  # runs ~2 s: long enough to be seen and refused
    data = tmp_path / "d"
    monkeypatch.setattr(run_lock, "ACQUIRE_WAIT_S", 0.05)  # refuse at once, while the first is surely running
    cmd = [sys.executable, "-m", "lrfp", "import", str(folder), "--source", "s", "-d", str(data), "--max-side", "48"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (data / "locks").is_dir() or not run_lock.is_held(data, "import.s"):
            assert proc.poll() is None and time.monotonic() < deadline, "the first import ended before it was seen"
            time.sleep(0.02)
        with pytest.raises(StoreBusyError) as e:
            run(data, folder, max_side=32, redo=True)
        assert (f"another `lrfp import --source s` is running on the store in {data.resolve()} (pid {proc.pid}, since "
                in str(e.value)) and f"folder {folder}" in str(e.value)
        other = run(data, tree(tmp_path / "other", smfd_dir, 4), source="t")  # another source runs beside it
        assert other.imported > 0
        with open_store(data) as st:  # a source left `importing` by a killed import: told apart from the live one
            st.set_source_status(st.source("t")["id"], "importing")
            left = {x["name"]: x["left_by_stopped_run"] for x in collect_stats(st)["sources"]}
        assert left == {"s": False, "t": True}
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with open_store(data) as s:
        sides = {max(r["width"], r["height"]) for r in s.query(
            "SELECT c.width, c.height FROM crops c JOIN sources o ON o.id = c.source_id WHERE o.name = 's'")}
    assert max(sides) <= 48  # only the first import's crops: the refused redo wrote none
