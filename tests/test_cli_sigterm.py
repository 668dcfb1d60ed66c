"""SIGTERM (kill, timeout, a scheduler's pre-emption) stops every command as Ctrl-C does: what was stored stays,
the command's own message says so with "Terminated (SIGTERM)", exit 143, and a rerun finishes the job.

The real signal is sent to this process (os.kill) at a precise point of a real command run in-process; the
subprocess tests (a real `kill` of `lrfp fetch` and of `lrfp label`) are in test_fetch_e2e.py and
test_label_process.py; bench's are in test_bench_resume.py.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bench_helpers import cli_run
from lrfp.interrupts import Terminated, first_signal_stops, sigterm_as_interrupt, terminated

TERMINATED = "Terminated (SIGTERM): what was stored stays; rerun the same command to finish."


def sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_raises_terminated_in_the_block_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            sigterm_self()
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
    assert terminated()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("first, second, raised", [
    (signal.SIGTERM, signal.SIGTERM, Terminated),
    (signal.SIGINT, signal.SIGINT, KeyboardInterrupt),
    (signal.SIGINT, signal.SIGTERM, Terminated),
])
def test_the_first_signal_asks_for_a_stop_and_a_second_one_interrupts(first, second, raised) -> None:
    from lrfp import interrupts

    interrupts.reset()
    asked: list[int] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(raised) as e:
        with first_signal_stops(asked.append):
            os.kill(os.getpid(), first)
            for _ in range(1000):
                pass
            assert asked == [first]  # a stop asked for, nothing raised
            os.kill(os.getpid(), second)
            for _ in range(1000):
                pass
    assert e.type is raised
    assert terminated() == (signal.SIGTERM in (first, second))
    assert {s: signal.getsignal(s) for s in before} == before


def test_sigterm_during_import_keeps_what_was_stored_and_a_rerun_finishes(smfd_dir: Path, tmp_path: Path, capsys,
                                                                         monkeypatch) -> None:
    from conftest import smfd_subset
    from test_import import distinct_files

    from lrfp import import_folder as imp
    from lrfp.store import open_store

    folder, _ = smfd_subset(smfd_dir, tmp_path / "src", n_groups=8, seed=4)
    data = tmp_path / "d"
    real, calls = imp._import_one, [0]

    def terminated_at_the_sixth_file(*a, **kw):
        calls[0] += 1
        if calls[0] == 6:
            sigterm_self()  # Terminated is raised here, before the sixth file is read
        return real(*a, **kw)

    monkeypatch.setattr(imp, "_import_one", terminated_at_the_sixth_file)
    argv = ["import", str(folder), "--source", "s", "-d", str(data)]
    code, _, err = cli_run(capsys, *argv)
    assert code == 143
    assert err.strip().splitlines()[-1] == TERMINATED
    with open_store(data) as s:
        assert s.query("SELECT COUNT(*) FROM imported_files")[0][0] == 5  # the five files before it, all kept
    monkeypatch.setattr(imp, "_import_one", real)
    code, _, err = cli_run(capsys, *argv)
    assert code == 0, err
    with open_store(data) as s:
        assert s.count_crops() == distinct_files(folder)
        assert s.query("SELECT COUNT(*) FROM imported_files")[0][0] == len(list(folder.rglob("*.jpg")))


def test_sigterm_during_publish_leaves_the_earlier_export_whole(small_store, tmp_path: Path, capsys,
                                                                monkeypatch) -> None:
    from lrfp.publish import card
    from lrfp.split import SplitConfig, grouped_split

    grouped_split(small_store, SplitConfig())
    out = tmp_path / "hub"
    argv = ["publish", "-d", str(small_store.root), "--out", str(out), "--annotations-only", "--overwrite"]
    code, _, err = cli_run(capsys, *argv)
    assert code == 0, err
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = card.write_card

    def terminated_while_the_card_is_written(*a, **kw):
        sigterm_self()
        return real(*a, **kw)

    monkeypatch.setattr(card, "write_card", terminated_while_the_card_is_written)
    code, _, err = cli_run(capsys, *argv)
    assert code == 143
    assert err.strip().splitlines()[-1] == TERMINATED
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched
    assert not list(tmp_path.glob(".hub.*"))  # no staging folder left behind
    monkeypatch.setattr(card, "write_card", real)
    code, _, err = cli_run(capsys, *argv)
    assert code == 0, err


def test_ctrl_c_still_exits_130_with_its_own_message(smfd_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from conftest import smfd_subset

    from lrfp import import_folder as imp

    folder, _ = smfd_subset(smfd_dir, tmp_path / "src", n_groups=2, seed=4)

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(imp, "_import_one", ctrl_c)
    code, _, err = cli_run(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"))
    assert code == 130
    assert err.strip().splitlines()[-1] == "Interrupted: what was stored stays; rerun the same command to finish."


_AFTER_THE_COMMAND = """
import os, signal, sys, time
from lrfp.cli import main

SIG = getattr(signal, sys.argv[1])


class SlowShutdown:
    # a signal late in the interpreter's shutdown, as the modules are torn down (pyarrow, torch: ~0.3 s after
    # publish or split), after CPython has reset Python signal handlers (signalmodule.c _PySignal_Fini)
    def __del__(self, kill=os.kill, pid=os.getpid(), sleep=time.sleep):
        kill(pid, SIG)
        sleep(0.3)


slow_shutdown = SlowShutdown()
sys.argv = ["lrfp", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("args, code", [(["--version"], 0), (["stats", "-d", "/nonexistent/lrfp-data"], 2)])
def test_a_signal_after_the_command_ended_exits_with_the_commands_code(sig, args, code):
    """Tester's bug C: a SIGTERM just after `lrfp publish` had finished killed it silently (-15): a scheduler read
    a failure, and the rerun it then tries is refused (--out no longer empty)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _AFTER_THE_COMMAND, sig, *args], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    assert (proc.stdout if code == 0 else proc.stderr).strip()  # the command's own output is there, flushed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_summary_is_printed_cuts_nothing(smfd_dir: Path, tmp_path: Path, capsys, monkeypatch,
                                                           sig) -> None:
    """Tester's bug G: a signal after the work was stored, while the command printed its summary, exited 143 with
    "rerun ... to finish" and the table cut short. Now the summary is printed whole and the exit code is 0."""
    from conftest import smfd_subset

    import lrfp.cli.tables as tables

    folder, _ = smfd_subset(smfd_dir, tmp_path / "src", n_groups=2, seed=4)
    real = tables.import_summary

    def signalled_while_printing(*a, **kw):
        os.kill(os.getpid(), sig)
        for _ in range(1000):  # a handler runs at the next bytecode boundary
            pass
        return real(*a, **kw)

    monkeypatch.setattr(tables, "import_summary", signalled_while_printing)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    code, out, err = cli_run(capsys, "import", str(folder), "--source", "s", "-d", str(tmp_path / "d"))
    assert code == 0, err
    assert "Interrupted" not in err and "Terminated" not in err
    assert out.strip()  # the summary is there
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are back after the command
