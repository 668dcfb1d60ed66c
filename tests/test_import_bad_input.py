"""`lrfp import` refusing bad input (exit 2, nothing stored) and re-imports with other settings (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lrfp.cli import main
from lrfp.store import open_store


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err.strip()


def tree(root: Path, smfd: Path, names: dict[str, str], n: int = 2) -> Path:
    """A class-folder tree: for each folder name, n real SMFD files of the class it maps to."""
    for folder, cls in names.items():
        (root / folder).mkdir(parents=True)
        for src in sorted((smfd / cls).glob("*.jpg"))[:n]:
            (root / folder / src.name).write_bytes(src.read_bytes())
    return root


def test_conflicting_map_options_are_refused(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"With_Mask": "with_mask"})
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"),
                       "--map", "With_Mask=with_mask", "--map", "With_Mask=without_mask")
    assert code == 2
    assert err == ("Error: --map With_Mask=with_mask and --map With_Mask=without_mask contradict each other: "
                   "give folder 'With_Mask' one label")
    assert not (tmp_path / "d").exists()
    # The same pair twice says one thing: accepted.
    code, _, _ = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"),
                     "--map", "With_Mask=with_mask", "--map", "With_Mask=with_mask")
    assert code == 0


def test_groups_csv_giving_one_file_two_groups_is_refused(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})
    name = sorted(p.name for p in (folder / "with_mask").iterdir())[0]
    groups = tmp_path / "g.csv"
    groups.write_text(f"file,group_id\n{name},1\n{name},2\n")
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"), "--groups", str(groups))
    assert code == 2
    assert err == (f"Error: {groups}:3: with_mask/{name} is given group_id '2', but line 2 gave it '1': "
                   "a file belongs to one group")
    assert not (tmp_path / "d").exists()  # refused: no empty store left behind


def test_groups_csv_with_an_unbalanced_quote_is_a_file_line_error(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})
    groups = tmp_path / "g.csv"
    groups.write_text('file,group_id\n"a.jpg,1\nb.jpg,2\n')
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"), "--groups", str(groups))
    assert code == 2
    assert err.splitlines() == [f"Error: groups CSV {groups} is not valid CSV:",
                                f'{groups}:2: unbalanced quote: a field opened with " is never closed '
                                '(close it, or double a quote inside a quoted field as "")']


@pytest.mark.parametrize("text, message", [
    ("file,file,group_id\na.jpg,b.jpg,1\n", "{g}:1: column(s) named twice in the header: file"),
    ("file,group_id\na.jpg,1,extra\n",
     "groups CSV {g} is not valid CSV:\n{g}:2: 3 fields but the header has 2 (quote fields that contain commas)"),
])
def test_groups_csv_shape_faults_are_file_line_errors(capsys, tmp_path, smfd_dir, text, message):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"}, n=1)
    groups = tmp_path / "g.csv"
    groups.write_text(text)
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"), "--groups", str(groups))
    assert (code, err) == (2, "Error: " + message.format(g=groups))


@pytest.mark.parametrize("source, problem", [
    ("", "is empty"),
    ("a/b", "contains '/'"),
    ("x" * 300, "is 300 characters long"),
    ("-lead", "must start with a letter or digit"),
    ("caf\u00e9", "contains '\u00e9'"),
])
def test_source_names_follow_the_manifest_id_rule(capsys, tmp_path, smfd_dir, source, problem):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})
    code, _, err = cli(capsys, "import", str(folder), "--source", source, "-d", str(tmp_path / "d"))
    shown = source if len(source) <= 40 else source[:37] + "..."
    assert code == 2
    assert err == (f"Error: --source {shown!r} {problem}: use letters, digits, '.', '_' or '-' "
                   "(at most 80, starting with a letter or digit)")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("folder_name, hint", [
    ("WITHOUT_MASK", "use --map WITHOUT_MASK=without_mask (or with_mask, or ignore)"),
    ("Without-Mask", "use --map Without-Mask=without_mask (or with_mask, or ignore)"),
    ("no_mask", "use --map no_mask=without_mask (or with_mask, or ignore)"),
    ("unmasked", "use --map unmasked=without_mask (or with_mask, or ignore)"),
    ("With_Mask", "use --map With_Mask=with_mask (or without_mask, or ignore)"),
    ("masked", "use --map masked=with_mask (or without_mask, or ignore)"),
    ("people", "use --map people=with_mask or --map people=without_mask (or ignore)"),
    ("mask_weared_incorrect", "use --map mask_weared_incorrect=with_mask or --map mask_weared_incorrect=without_mask (or ignore)"),
])
def test_unmapped_folder_hint_guesses_the_right_class(capsys, tmp_path, smfd_dir, folder_name, hint):
    folder = tree(tmp_path / "in", smfd_dir, {folder_name: "without_mask"}, n=1)
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"))
    assert code == 2
    assert err == f"Error: folder {folder.resolve()}: subfolder(s) {folder_name} not mapped to a class; {hint}"


def test_each_unmapped_folder_gets_its_own_hint(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"Masked": "with_mask", "NO-MASK": "without_mask"}, n=1)
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"))
    assert (code, err) == (2, f"Error: folder {folder.resolve()}: subfolder(s) Masked, NO-MASK not mapped to a class; "
                              "use --map Masked=with_mask (or without_mask, or ignore); "
                              "use --map NO-MASK=without_mask (or with_mask, or ignore)")


def test_groups_folder_and_missing_paths_say_what_they_are(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"}, n=1)
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"), "--groups", str(tmp_path))
    assert (code, err) == (2, f"Error: groups CSV {tmp_path} is a folder, not a file: give the path of the groups CSV itself")
    f = folder / "with_mask" / sorted(p.name for p in (folder / "with_mask").iterdir())[0]
    code, _, err = cli(capsys, "import", str(f), "--source", "s", "-d", str(tmp_path / "d"))
    assert (code, err) == (2, f"Error: folder {f} is a file, not a folder")
    assert not (tmp_path / "d").exists()


def test_reimport_with_another_max_side_is_refused_then_redone_keeping_identical_labels(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask", "without_mask": "without_mask"}, n=3)
    tiny = folder / "with_mask" / "tiny.png"  # 20 px: the same crop at --max-side 48 and 32
    Image.open(sorted((smfd_dir / "with_mask").glob("*.jpg"))[5]).convert("RGB").resize((16, 20)).save(tiny)
    d = str(tmp_path / "d")
    assert cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--max-side", "48")[0] == 0
    with open_store(d, create=False) as s:
        tiny_id = s.query("SELECT id FROM crops WHERE original = 'with_mask/tiny.png'")[0]["id"]
        s.add_label(tiny_id, "unusable", "ana")  # a human's label on the crop that will come out identical
        before = {r["original"]: (r["id"], r["width"], r["height"]) for r in s.query("SELECT * FROM crops")}
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--max-side", "32")
    assert code == 2
    assert err == ("Error: source 's': its 7 stored files were imported with --max-side 48, this run asks for "
                   "--max-side 32. Rerun with --redo to import them again with the new settings (crops that come "
                   "out identical keep their labels), or import under another --source name")
    with open_store(d, create=False) as s:  # nothing changed
        assert {r["original"]: (r["id"], r["width"], r["height"]) for r in s.query("SELECT * FROM crops")} == before
    code, out, _ = cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--max-side", "32", "--redo")
    assert code == 0 and "--redo: identical, kept with labels" in out
    with open_store(d, create=False) as s:
        rows = {r["original"]: r for r in s.query("SELECT * FROM crops")}
        assert len(rows) == 7
        assert rows["with_mask/tiny.png"]["id"] == tiny_id and s.current_label(tiny_id) == "unusable"
        assert all(max(r["width"], r["height"]) <= 32 for r in rows.values())
        for orig, r in rows.items():
            assert s.current_label(r["id"]) == ("unusable" if orig.endswith("tiny.png") else orig.split("/")[0])
            assert s.crop_file(r).exists()
        assert len(list((Path(d) / "crops").rglob("*.png"))) == 7  # the old 48 px files are gone
    assert cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--max-side", "32")[0] == 0


def test_reimport_with_another_map_or_groups_is_refused_then_redone(capsys, tmp_path, smfd_dir):
    from lrfp.store import sha256_bytes

    folder = tree(tmp_path / "in", smfd_dir, {"masked": "with_mask"}, n=3)
    d = str(tmp_path / "d")
    assert cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--map", "masked=with_mask")[0] == 0
    with open_store(d, create=False) as s:
        ids = [r["id"] for r in s.query("SELECT id FROM crops ORDER BY id")]
        s.add_label(ids[0], "unusable", "ana")  # a person's label: --redo must keep it
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--map", "masked=without_mask")
    assert (code, err) == (2, "Error: source 's': its 3 stored files were imported with --map masked=with_mask, this "
                              "run asks for --map masked=without_mask. Rerun with --redo to import them again with the "
                              "new settings (crops that come out identical keep their labels), or import under "
                              "another --source name")
    with open_store(d, create=False) as s:
        assert [s.current_label(i) for i in ids] == ["unusable", "with_mask", "with_mask"]
    assert cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--map", "masked=without_mask", "--redo")[0] == 0
    with open_store(d, create=False) as s:
        assert [r["id"] for r in s.query("SELECT id FROM crops ORDER BY id")] == ids  # same pixels, same crops
        assert [s.current_label(i) for i in ids] == ["unusable", "without_mask", "without_mask"]
    groups = tmp_path / "g.csv"
    names = sorted(p.name for p in (folder / "masked").iterdir())
    groups.write_text("file,group_id\n" + "".join(f"{n},7\n" for n in names))
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--map", "masked=without_mask",
                       "--groups", str(groups))
    assert code == 2 and err.startswith("Error: source 's': its 3 stored files were imported with no groups CSV, this "
                                        f"run asks for a groups CSV with sha256 {sha256_bytes(groups.read_bytes())[:12]}.")
    assert cli(capsys, "import", str(folder), "--source", "s", "-d", d, "--map", "masked=without_mask",
               "--groups", str(groups), "--redo")[0] == 0
    with open_store(d, create=False) as s:
        assert {r["group_id"] for r in s.query("SELECT group_id FROM crops")} == {"s:7"}


def test_import_dot_inside_the_image_folder_never_scans_its_own_store(tmp_path, smfd_dir):
    """`lrfp import .` with the default data dir ./lrfp-data: the store is made inside the folder being imported.
    It used to be refused as an unmapped class folder, and `--map lrfp-data=with_mask` imported the store's files."""
    import os
    import subprocess
    import sys

    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask", "without_mask": "without_mask"})
    other = tree(tmp_path / "in" / "with_mask" / "old-store", smfd_dir, {"crops": "without_mask"}, n=1)
    (other / "lrfp.sqlite").write_bytes(b"")  # another lrfp data directory deeper down: not images either
    for argv in ([], ["--map", "lrfp-data=with_mask"]):
        r = subprocess.run([sys.executable, "-m", "lrfp", "import", ".", "--source", "mine", "--max-side", "48", *argv],
                           cwd=folder, capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
        assert r.returncode == 0, r.stderr
        assert "not scanned: lrfp-data/" in r.stdout and "the data directory of this store (-d)" in r.stdout
        assert "not scanned: with_mask/old-store/" in r.stdout and "an lrfp data directory (it holds lrfp.sqlite)" in r.stdout
    with open_store(folder / "lrfp-data", create=False) as s:
        assert s.count_crops() == 4
        assert {r["original"].split("/")[0] for r in s.query("SELECT original FROM crops")} == {"with_mask", "without_mask"}
        assert not s.query("SELECT 1 FROM imported_files WHERE relpath LIKE '%lrfp-data%' OR relpath LIKE '%old-store%'")


def test_a_folder_inside_the_data_directory_is_refused(capsys, tmp_path, smfd_dir):
    d = tmp_path / "d"
    assert cli(capsys, "import", str(tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})), "--source", "s",
               "-d", str(d))[0] == 0
    for folder in (d, d / "crops"):
        code, _, err = cli(capsys, "import", str(folder), "--source", "t", "-d", str(d))
        assert (code, err) == (2, f"Error: folder {folder} is inside the data directory {d} (the store's own files): "
                                  "give the folder of the images to import, or another data directory (-d)")
    with open_store(d, create=False) as s:
        assert s.count_crops() == 2 and [r["name"] for r in s.sources()] == ["s"]


@pytest.mark.parametrize("text, message", [
    ("file,group_id\n", "the groups CSV has a header but no rows"),
    ("class,file,group_id\n\n\n", "the groups CSV has a header but no rows"),
    ("\n\n", "the groups CSV is empty; it needs a header line file,group_id and a row per file"),
    ("", "the groups CSV is empty; it needs a header line file,group_id and a row per file"),
])
def test_a_groups_csv_without_rows_is_refused(capsys, tmp_path, smfd_dir, text, message):
    """Every file would silently become its own group: the grouping the CSV was given for would be lost."""
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})
    groups = tmp_path / "g.csv"
    groups.write_text(text)
    code, _, err = cli(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"), "--groups", str(groups))
    assert (code, err) == (2, f"Error: {groups}: {message}")
    assert not (tmp_path / "d").exists()  # tester's bug 13: a refused import left an empty lrfp.sqlite behind


def test_symlinked_folders_are_followed_and_broken_links_reported(capsys, tmp_path, smfd_dir):
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask", "without_mask": "without_mask"}, n=1)
    elsewhere = tree(tmp_path / "elsewhere", smfd_dir, {"sub": "with_mask"}, n=3)
    (folder / "with_mask" / "linked").symlink_to(elsewhere / "sub", target_is_directory=True)
    (folder / "with_mask" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "without_mask" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "masked").symlink_to(tmp_path / "no-such-folder")
    with open_store(tmp_path / "d") as s:
        from lrfp.import_folder import ImportConfig, import_folder

        r = import_folder(s, ImportConfig(folder=folder, source="s"))
    assert (r.files, r.imported) == (6, 4)  # 2 + the 3 behind the folder link - 1 duplicate (sub/ repeats a file)
    assert r.skipped == [("with_mask/gone.jpg", f"broken symbolic link (its target {tmp_path / 'nowhere.jpg'} does not exist)")]
    assert r.not_scanned == [
        ("masked", f"broken symbolic link (its target {tmp_path / 'no-such-folder'} does not exist)"),
        ("without_mask/loop/", f"symbolic link to {folder.resolve()}, a folder it is inside (a loop): not followed")]


def test_symbolic_links_making_a_loop_through_two_folders_end(tmp_path, smfd_dir):
    """a/x -> b and b/y -> a: each real folder is scanned once (os.walk with followlinks alone never ends)."""
    from lrfp.import_folder import ImportConfig, import_folder

    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"}, n=1)
    b = tree(tmp_path / "b", smfd_dir, {"sub": "without_mask"}, n=1) / "sub"
    (folder / "with_mask" / "x").symlink_to(b, target_is_directory=True)
    (b / "y").symlink_to(folder / "with_mask", target_is_directory=True)
    with open_store(tmp_path / "d") as s:
        r = import_folder(s, ImportConfig(folder=folder, source="s"))
    assert (r.files, r.imported) == (2, 2)
    assert r.not_scanned == [("with_mask/x/y/", f"symbolic link to {(folder / 'with_mask').resolve()}, a folder "
                                                "scanned already: not followed")]


def test_the_stores_own_files_are_never_scanned_through_symbolic_links(capsys, tmp_path, smfd_dir):
    """Tester's bug 6: a class folder linked to the store's crops/ (and a deeper link, and a file link to one crop)
    had the store's own PNGs imported as images. The rule holds for the REAL path of every folder and file."""
    d = tmp_path / "d"
    assert cli(capsys, "import", str(tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask"})), "--source", "s",
               "-d", str(d))[0] == 0
    folder = tree(tmp_path / "in2", smfd_dir, {"without_mask": "without_mask"}, n=1)
    (folder / "with_mask").symlink_to(d / "crops", target_is_directory=True)
    (folder / "without_mask" / "deeper").symlink_to(d / "crops", target_is_directory=True)
    crop = next(p for p in (d / "crops").rglob("*.png"))
    (folder / "without_mask" / "one.png").symlink_to(crop)
    code, out, err = cli(capsys, "import", str(folder), "--source", "t", "-d", str(d), "--map", "with_mask=with_mask")
    assert code == 0, err
    said = " ".join(out.split())
    for entry in ("not scanned: with_mask/", "not scanned: without_mask/deeper/", "without_mask/one.png"):
        assert entry in said, said
    assert said.count("a link into the data directory of this store (-d)") == 3, said  # the two folders, the file
    with open_store(d, create=False) as s:
        files = [r["relpath"] for r in s.query(
            "SELECT f.relpath FROM imported_files f JOIN sources x ON x.id = f.source_id WHERE x.name = 't'")]
        assert files == [p.relative_to(folder).as_posix() for p in sorted((folder / "without_mask").glob("*.jpg"))]
        assert s.count_crops() == 3


@pytest.mark.parametrize("existing", ["none", "empty folder", "store"])
def test_a_refused_import_leaves_no_empty_store_behind(capsys, tmp_path, smfd_dir, existing):
    """Tester's bug 13: an unmapped subfolder (or any refusal after the store was opened) left an empty lrfp.sqlite.
    A store or folder that was there before the run is kept as it was."""
    folder = tree(tmp_path / "in", smfd_dir, {"with_mask": "with_mask", "odd": "with_mask"}, n=1)
    d = tmp_path / "d"
    if existing == "empty folder":
        d.mkdir()
    elif existing == "store":
        assert cli(capsys, "import", str(tree(tmp_path / "ok", smfd_dir, {"with_mask": "with_mask"})), "--source", "s",
                   "-d", str(d))[0] == 0
    code, _, err = cli(capsys, "import", str(folder), "--source", "t", "-d", str(d))
    assert code == 2 and "subfolder(s) odd not mapped to a class" in err, err
    if existing == "none":
        assert not d.exists()
    elif existing == "empty folder":
        assert d.is_dir() and list(d.iterdir()) == []
    else:
        with open_store(d, create=False) as s:
            assert s.count_crops() == 2 and [r["name"] for r in s.sources()] == ["s"]


def test_an_empty_store_another_process_has_open_is_not_removed(tmp_path):
    """The clean-up of bug 13 must never pull a store from under another command that opened it meanwhile."""
    from lrfp.errors import InputError
    from lrfp.store_cleanup import removed_if_left_empty

    d = tmp_path / "d"
    with pytest.raises(InputError), removed_if_left_empty(d):
        other = open_store(d)  # stands for another process's connection, still open when this run gives up
        assert other.sources() == []  # (it has read the store: SQLite's -wal and -shm files are there)
        raise InputError("refused")
    try:
        assert (d / "lrfp.sqlite").is_file()
    finally:
        other.close()
    with pytest.raises(InputError), removed_if_left_empty(tmp_path / "e"):
        open_store(tmp_path / "e").close()
        raise InputError("refused")
    assert not (tmp_path / "e").exists()
