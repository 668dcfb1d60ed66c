"""Real `lrfp label` processes on a pseudo-terminal: killed with SIGKILL, and two at once on one store."""

from __future__ import annotations

import codecs
import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import sys
import termios
import time
from pathlib import Path

import pytest
from label_helpers import events, unlabeled_store

from lrfp.label.session import LabelConfig, LabelSession
from lrfp.store import open_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")
STARTUP_S = 60  # a cold Python + Textual start on a loaded 2-core machine
ACK_S = 20


class LabelProcess:
    """`lrfp label` in a child process whose terminal is a pty we read and type into."""

    def __init__(self, data_dir: Path, annotator: str, cols: int = 120, rows: int = 40, args: tuple = (),
                 prelude: str = "") -> None:
        """`prelude`: Python run in the child before `lrfp label` (a test's fault injection)."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: size its terminal, then become `lrfp label`
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.environ.update(TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
                os.execv(sys.executable, [sys.executable, "-c", prelude + "\nfrom lrfp.cli import main; main()", "label",
                                          "--data-dir", str(data_dir), "--annotator", annotator, *args])
            finally:
                os._exit(127)
        self.pid, self.fd, self.text, self.raw = pid, fd, "", ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""  # an escape sequence cut in two by a read

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # the child is gone
                data = b""
            buf = self._pending + self._decoder.decode(data)
            self.raw += buf[len(self._pending):]
            cut = buf.rfind("\x1b")
            if cut != -1 and not ANSI.match(buf, cut):
                self._pending, buf = buf[cut:], buf[:cut]
            else:
                self._pending = ""
            self.text += ANSI.sub("", buf)

    def wait_for(self, pattern: str, timeout: float) -> None:
        """Read the screen output until `pattern` (a plain string) has been drawn."""
        deadline = time.monotonic() + timeout
        while pattern not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not drawn within {timeout}s; last output: {self.text[-600:]!r}")
            self._read(0.1)

    def press(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        os.close(self.fd)


def acknowledged(n: int) -> str:
    """What the progress line shows once the n-th label of this session is committed."""
    return f"this session {n} ("


@pytest.fixture
def data_dir(tmp_path, smfd_dir):
    with unlabeled_store(tmp_path / "data", smfd_dir, n=16):
        pass
    return tmp_path / "data"


def queue(data_dir):
    with open_store(data_dir) as store:
        return LabelSession(store, LabelConfig(annotator="probe", only="all")).ids


def test_sigkill_loses_no_acknowledged_label_and_resume_starts_after_them(data_dir):
    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana")
    try:
        proc.wait_for(acknowledged(0), STARTUP_S)
        keys = ["m", "n", "x", "s", "m"]
        for i, key in enumerate(keys, 1):
            proc.press(key)
            proc.wait_for(acknowledged(i), ACK_S)
        for key in "nnn":  # typed, then killed before any acknowledgement is awaited
            proc.press(key)
    finally:
        proc.kill()
    with open_store(data_dir) as store:
        got = events(store)
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        expected = [(ids[i], label, "ana", "label") for i, label in
                    enumerate(["with_mask", "without_mask", "unusable", "skip", "with_mask"])]
        assert got[:5] == expected  # every acknowledged label is there, in order
        assert 5 <= len(got) <= 8
        assert got[5:] == [(ids[i], "without_mask", "ana", "label") for i in range(5, len(got))]
        again = LabelSession(store, LabelConfig(annotator="ana"))
        assert again.current_id == ids[len(got)]  # resume at the first unlabeled crop


def test_two_processes_on_one_store_lose_and_duplicate_nothing(data_dir):
    # One source each: on shared crops the slower key would be refused (kept, not overwritten: test_label_app)
    a = LabelProcess(data_dir, "ana", args=("--source", "cam-a"))
    b = LabelProcess(data_dir, "bob", args=("--source", "cam-b"))
    try:
        a.wait_for(acknowledged(0), STARTUP_S)
        b.wait_for(acknowledged(0), STARTUP_S)
        for i in range(1, 6):
            a.press("m")
            b.press("n")
            a.wait_for(acknowledged(i), ACK_S)
            b.wait_for(acknowledged(i), ACK_S)
        for _ in range(3):  # both typing at once, then both killed
            a.press("m")
            b.press("n")
    finally:
        a.kill()
        b.kill()
    with open_store(data_dir) as store:
        got = events(store)
    ana = [e for e in got if e[2] == "ana"]
    bob = [e for e in got if e[2] == "bob"]
    assert 5 <= len(ana) <= 8 and 5 <= len(bob) <= 8
    assert {e[1] for e in ana} == {"with_mask"} and {e[1] for e in bob} == {"without_mask"}
    assert len({e[0] for e in ana}) == len(ana) and len({e[0] for e in bob}) == len(bob)  # one event per key
    assert len(got) == len(ana) + len(bob)


def test_killed_process_leaves_a_store_another_process_can_write(data_dir):
    proc = LabelProcess(data_dir, "ana")
    try:
        proc.wait_for(acknowledged(0), STARTUP_S)
        proc.press("m")
        proc.wait_for(acknowledged(1), ACK_S)
    finally:
        proc.kill()
    conn = sqlite3.connect(data_dir / "lrfp.sqlite", timeout=5)
    conn.execute("BEGIN IMMEDIATE")  # no lock is left behind by the killed writer
    conn.execute("ROLLBACK")
    conn.close()


def wait_exit(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"process {pid} did not exit within {timeout}s")


def test_ctrl_c_quits_cleanly_with_a_summary(data_dir):
    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana")
    proc.wait_for(acknowledged(0), STARTUP_S)
    proc.press("n")
    proc.wait_for(acknowledged(1), ACK_S)
    proc.press("\x03")  # Ctrl-C
    proc.wait_for("ana labeled 1 crop this session (without_mask 1).", ACK_S)
    status = wait_exit(proc.pid, ACK_S)
    os.close(proc.fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    with open_store(data_dir) as store:
        assert events(store) == [(ids[0], "without_mask", "ana", "label")]


def assert_terminal_restored(proc) -> None:  # noqa: ANN001 - a LabelProcess
    entered = proc.raw.rfind("\x1b[?1049h")  # the app's alternate screen ...
    assert entered != -1 and proc.raw.find("\x1b[?1049l", entered) != -1  # ... left again
    assert proc.raw.find("\x1b[?25h", entered) != -1  # and the cursor shown again


def test_sigterm_quits_as_q_does_keeps_every_label_and_restores_the_terminal(data_dir):
    """`kill PID`, `timeout` or a scheduler: the app quits cleanly (summary, terminal back to normal), exit 143."""
    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana")
    proc.wait_for(acknowledged(0), STARTUP_S)
    for i, key in enumerate("nm", 1):
        proc.press(key)
        proc.wait_for(acknowledged(i), ACK_S)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait_for("ana labeled 2 crops this session (with_mask 1, without_mask 1).", ACK_S)
    proc.wait_for("Terminated (SIGTERM): what was stored stays; rerun the same command to finish.", ACK_S)
    status = wait_exit(proc.pid, ACK_S)
    os.close(proc.fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 143
    assert "Traceback" not in proc.text
    assert_terminal_restored(proc)
    with open_store(data_dir) as store:
        assert events(store) == [(ids[0], "without_mask", "ana", "label"), (ids[1], "with_mask", "ana", "label")]


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_while_it_quits_still_restores_the_terminal(data_dir, first):
    """Tester's bug E: two signals in quick succession (an impatient `kill`, a scheduler's SIGINT then SIGTERM)
    left the shell raw and on the alternate screen."""
    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana")
    proc.wait_for(acknowledged(0), STARTUP_S)
    proc.press("m")
    proc.wait_for(acknowledged(1), ACK_S)
    os.kill(proc.pid, first)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait_for("Terminated (SIGTERM): what was stored stays; rerun the same command to finish.", ACK_S)
    status = wait_exit(proc.pid, ACK_S)
    os.close(proc.fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 143
    assert "Traceback" not in proc.text and "ana labeled 1 crop this session (with_mask 1)." in proc.text
    assert_terminal_restored(proc)
    with open_store(data_dir) as store:
        assert events(store) == [(ids[0], "with_mask", "ana", "label")]


def test_closed_terminal_loses_nothing(data_dir):
    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana")
    proc.wait_for(acknowledged(0), STARTUP_S)
    for i, key in enumerate("mm", 1):
        proc.press(key)
        proc.wait_for(acknowledged(i), ACK_S)
    os.close(proc.fd)  # the terminal window goes away: the child gets SIGHUP / EOF
    wait_exit(proc.pid, 30)
    with open_store(data_dir) as store:
        assert events(store) == [(ids[0], "with_mask", "ana", "label"), (ids[1], "with_mask", "ana", "label")]


FAULT = """
from lrfp.label.single_screen import SingleScreen
label = SingleScreen.action_label
def faulty(self, value):
    if self.session.progress().session_labels == 1:
        raise RuntimeError("injected fault")
    label(self, value)
SingleScreen.action_label = faulty
"""


def test_an_error_inside_the_app_exits_1_with_the_terminal_restored(data_dir):
    """Tester's bug: an exception inside the app (NoMatches) ended `lrfp label` with exit 0. Here a fault is
    injected into the second key's action."""
    import termios

    ids = queue(data_dir)
    proc = LabelProcess(data_dir, "ana", prelude=FAULT)
    proc.wait_for(acknowledged(0), STARTUP_S)
    proc.press("m")
    proc.wait_for(acknowledged(1), ACK_S)
    proc.press("n")
    proc.wait_for("Error: lrfp label stopped on an unexpected error (RuntimeError: injected fault): every label "
                  "typed before it is stored; rerun `lrfp label` to resume", ACK_S)
    status = wait_exit(proc.pid, ACK_S)
    lflag = termios.tcgetattr(proc.fd)[3]  # the terminal's modes as the shell gets them back
    os.close(proc.fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1
    assert lflag & termios.ECHO and lflag & termios.ICANON  # not left raw
    assert_terminal_restored(proc)
    with open_store(data_dir) as store:
        assert events(store) == [(ids[0], "with_mask", "ana", "label")]
