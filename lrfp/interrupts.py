"""Ctrl-C (SIGINT) and SIGTERM: how a command is stopped, one way for both.

SIGTERM is what `kill PID`, `timeout`, systemd and batch schedulers (Slurm, Kubernetes) send before they kill a
process for good (SIGKILL, after a grace period: Slurm's KillWait and Kubernetes' terminationGracePeriodSeconds
default to 30 s). Python's default for it ends the process at once, with no cleanup; lrfp treats it as Ctrl-C
instead, so that what a command has stored survives and its summary is shown:

- `sigterm_as_interrupt()` (entered by the CLI's `main()` around every command) raises `Terminated`, a
  KeyboardInterrupt, where the signal lands: every command cleans up as it does for Ctrl-C.
- `first_signal_stops(on_stop)` is for a command that stops gracefully (fetch finishes the current frame and
  marks its videos interrupted; label quits its app): the first SIGINT or SIGTERM calls `on_stop`, a second one
  interrupts at once (KeyboardInterrupt, or Terminated for SIGTERM).

- `work_done()` (a command, once its library call returned) and `ignore_signals_from_now()` (`main()`, once the
  command ended, for the interpreter's shutdown): a signal after the work is stored cuts nothing, and the process
  exits with the command's own code.

`terminated()` says whether a SIGTERM came during the command (the CLI exits 143 then, 130 for Ctrl-C). Signal
handlers exist only in the main thread: elsewhere all of these do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable, Iterator

_state = {"terminated": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, a scheduler taking the machine back) raised where Ctrl-C's KeyboardInterrupt would
    be, so that a command cleans up the same way; the CLI says so and exits 143."""


def terminated() -> bool:
    """True once a SIGTERM reached a handler of this module (since the last `reset()`)."""
    return _state["terminated"]


def reset() -> None:
    """Forget an earlier SIGTERM (the CLI's main() calls this as a command starts)."""
    _state["terminated"] = False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        _state["terminated"] = True
        raise Terminated
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """During the block (main thread only), SIGTERM raises Terminated instead of ending the process at once."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: _raise_for(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def keep_sigint_handler() -> Iterator[None]:
    """SIGINT's handler as it was before the block, put back after it (`work_done` replaces it)."""
    if not _in_main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def first_signal_stops(on_stop: Callable[[int], None], second_stops_at_once: bool = True) -> Iterator[None]:
    """During the block (main thread only), the first SIGINT or SIGTERM calls `on_stop(signum)` (it should only
    set a flag or schedule the stop: it runs inside a signal handler); a second one, of either kind, raises
    KeyboardInterrupt (Terminated if it is a SIGTERM) for a stop at once. second_stops_at_once False: later
    signals call `on_stop` again instead, for a stop that must finish to leave things sound (a full-screen app
    restoring the terminal: raised in its event loop, a second signal left the shell raw and on the alternate
    screen)."""
    if not _in_main_thread():
        yield
        return
    stopping = [False]

    def handler(signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            _state["terminated"] = True
        if stopping[0] and second_stops_at_once:
            _raise_for(signum)
        stopping[0] = True
        on_stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def work_done() -> None:
    """The command's work is done and stored: from now until the command returns (main thread only), a SIGINT or
    SIGTERM is ignored, so that its summary is printed whole and it exits with its own code rather than 143 and
    "rerun to finish" with the table cut (docs/bench.md: a signal after every run ended interrupts nothing).
    A command calls this as its library call returns; `lrfp.cli.main()` puts the earlier handlers back."""
    _ignore_both()


def _ignore_both() -> None:
    if _in_main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def ignore_signals_from_now() -> None:
    """The command has ended and set its exit code, everything it stores stored: from now on (main thread only)
    SIGINT and SIGTERM are ignored, so the process ends with that code.

    The interpreter's shutdown after a command still takes a moment (~0.3 s with pyarrow or torch loaded); a
    signal there used to kill the process silently (SIGTERM: a scheduler reads that as a failure, and the
    command's "rerun" may then be refused, e.g. publish's --out no longer empty) or print a KeyboardInterrupt
    traceback. SIG_IGN, not a Python handler: CPython resets Python handlers to the default early in its
    shutdown (signalmodule.c `_PySignal_Fini`), before the slow part. For the process's entry point only
    (`lrfp.cli.main()` run as the program).
    """
    _ignore_both()


def signal_name(signum: int) -> str:
    """'Ctrl-C' for SIGINT, else the signal's name ('SIGTERM')."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
