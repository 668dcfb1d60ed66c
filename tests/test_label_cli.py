"""`lrfp label` and `lrfp stats` agreement as a user meets them: messages, exit codes, no app when idle."""

from __future__ import annotations

import json

import pytest

from lrfp.cli import main
from lrfp.label.session import LabelConfig, LabelSession
from lrfp.store import open_store


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err.strip()


def test_missing_data_dir_is_an_error(capsys, tmp_path):
    code, _, err = cli(capsys, "label", "-d", str(tmp_path / "absent"))
    assert code == 2  # bad input: -d names no store
    assert err == (f"Error: no lrfp data directory at {tmp_path / 'absent'}: point -d (or LRFP_DATA_DIR) at a store's "
                   "folder, or make one with `lrfp import` or `lrfp fetch`")


def test_empty_store_says_so_and_starts_no_app(capsys, tmp_path):
    open_store(tmp_path / "d").close()
    code, out, _ = cli(capsys, "label", "-d", str(tmp_path / "d"))
    assert code == 0
    assert out.strip() == "The store has no crops yet: run `lrfp import` or `lrfp fetch` first."


def test_nothing_left_to_label(capsys, small_store):
    n = small_store.count_crops()
    code, out, _ = cli(capsys, "label", "-d", str(small_store.root))
    assert code == 0
    assert out.strip() == f"Nothing left to label: all {n} crops have a label."
    code, out, _ = cli(capsys, "label", "-d", str(small_store.root), "--only", "skipped")
    assert (code, out.strip()) == (0, "No skipped crops: nothing to look at again.")


@pytest.mark.parametrize("args, code, message", [
    (["--only", "maybe"], 2, "Error: --only 'maybe': choose one of unlabeled, skipped, all"),
    (["--label", "masked"], 2, "Error: --label 'masked': choose one of with_mask, without_mask, unusable, skip"),
    (["--sample", "0.1"], 2, "Error: --sample only applies with --review"),
    (["--review", "--sample", "0"], 2, "Error: --sample 0.0: must be a fraction in (0, 1], e.g. 0.1"),
    (["--source", "zzz"], 2, "Error: no source named 'zzz' in the store (known: smfd)"),
])
def test_bad_options(capsys, small_store, args, code, message):
    got_code, _, err = cli(capsys, "label", "-d", str(small_store.root), *args)
    assert (got_code, err) == (code, message)


def test_stats_reports_agreement_once_reviews_exist(capsys, small_store):
    code, out, _ = cli(capsys, "stats", "-d", str(small_store.root), "--json")
    assert code == 0 and "agreement" not in json.loads(out)
    review = LabelSession(small_store, LabelConfig(annotator="bob", review=True, sample=1.0))
    truth = [small_store.current_label(i) for i in review.ids[:6]]
    for label in ["with_mask", "without_mask", "without_mask", "with_mask", "unusable", "skip"]:
        review.label_current(label)
    code, out, _ = cli(capsys, "stats", "-d", str(small_store.root), "--json")
    a = json.loads(out)["agreement"]
    reviewed = ["with_mask", "without_mask", "without_mask", "with_mask", "unusable"]
    assert a["n"] == 5 and a["not_compared"] == 1
    assert len(a["disagreements"]) == sum(t != r for t, r in zip(truth, reviewed))
    assert a["observed"] == pytest.approx(sum(t == r for t, r in zip(truth, reviewed)) / 5)
    code, out, _ = cli(capsys, "stats", "-d", str(small_store.root))
    assert code == 0 and "Cohen's kappa" in out and "confusion (rows: current label, columns: review)" in out


NOT_A_TERMINAL = ("Error: lrfp label needs an interactive terminal: its {} (a pipe, a file, "
                  "/dev/null or cron). Run it in a terminal window, without {}; nothing was drawn or stored.")
STDIN, STDOUT = "`<` or a pipe into it", "`>` or a pipe after it"
STDERR = "`2>` (the app draws its screen on standard error)"


@pytest.mark.parametrize("how, which, redirects", [
    ("devnull", "standard input, standard output and standard error are not terminals",
     f"{STDIN}, {STDOUT} or {STDERR}"),
    ("piped_keys", "standard input, standard output and standard error are not terminals",
     f"{STDIN}, {STDOUT} or {STDERR}"),
    ("stdout_piped", "standard output is not a terminal", STDOUT),
    ("stderr_to_a_file", "standard error is not a terminal", STDERR),  # `lrfp label 2>label.log`: it drew blind
])
def test_label_without_a_terminal_is_refused_and_stores_nothing(tmp_path, smfd_dir, how, which, redirects):
    import os
    import pty
    import select
    import subprocess
    import sys

    from label_helpers import events, unlabeled_store

    store = unlabeled_store(tmp_path / "d", smfd_dir, n=4)
    store.close()
    cmd = [sys.executable, "-m", "lrfp", "label", "-d", str(tmp_path / "d")]
    env = {**os.environ, "LRFP_DEBUG": ""}
    on_terminal = ""  # what reached the pseudo-terminal
    if how == "devnull":  # like cron or `lrfp label </dev/null >log`
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env)
    elif how == "piped_keys":  # `echo m | lrfp label`: the m must not become a label
        p = subprocess.run(cmd, input="m\nm\nq\n", capture_output=True, text=True, timeout=120, env=env)
    else:  # a real terminal for the keys, one output stream redirected to a file/pipe
        master, slave = pty.openpty()
        streams = {"stdout": slave} if how == "stderr_to_a_file" else {"stderr": slave}
        try:
            p = subprocess.run(cmd, stdin=slave, text=True, timeout=120, env=env,
                               **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams})
            while select.select([master], [], [], 0.5)[0]:
                on_terminal += os.read(master, 65536).decode(errors="replace")
        finally:
            os.close(master)
            os.close(slave)
    message = NOT_A_TERMINAL.format(which, redirects)
    assert p.returncode == 2
    if how == "stdout_piped":
        assert on_terminal.strip() == message and p.stdout == ""
    else:
        assert p.stderr.strip() == message
    if how == "stderr_to_a_file":  # the Error line went into the file: it is said on the terminal too
        assert on_terminal.strip() == message
    assert "\x1b" not in (p.stdout or "") + (p.stderr or "") + on_terminal  # nothing drawn
    with open_store(tmp_path / "d", create=False) as s:
        assert events(s) == []
