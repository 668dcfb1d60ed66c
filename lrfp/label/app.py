"""The `lrfp label` Textual app: holds the session, switches views, guards the minimum terminal size."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

from textual import events
from textual.app import App
from textual.binding import Binding

from lrfp.errors import NotATerminalError
from lrfp.label.session import LabelConfig, LabelSession, SessionSummary

MIN_COLS, MIN_ROWS = 60, 18
"""Smallest terminal the views can draw in (crop, context panel, progress and footer)."""

LatencyProbe = Callable[[float, float, "int | None"], None]
"""Called with (key event time, time the new screen was written, crop id) - for the benchmark."""


def too_small_message(cols: int, rows: int) -> str:
    return (f"Terminal too small: {cols}x{rows}.\nlrfp label needs at least {MIN_COLS}x{MIN_ROWS} "
            "(columns x rows).\nEnlarge the window, or press q to quit; no label is lost.")


class LabelApp(App):
    """Label crops by keyboard. Storage lives in `session`; the screens only draw and call it."""

    TITLE = "lrfp label"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+c", "quit", "quit", show=False, priority=True)]

    def __init__(self, session: LabelSession, *, grid: bool = False,
                 latency_probe: LatencyProbe | None = None) -> None:
        super().__init__()
        self.session = session
        self.start_in_grid = grid
        self.latency_probe = latency_probe
        self._last_key_time = time.monotonic()
        self._too_small = None
        self._views_ready = False
        self._signal_loop = None  # the app's event loop, once mounted: where a signal's quit is scheduled
        self.stop_signal: int | None = None
        """The signal (SIGINT, SIGTERM) that made the app quit, else None (the user quit with q or Ctrl-C)."""
        self.disk_full_error: Exception | None = None
        """The error that said the disk is full when a label was stored (the app then quit), else None."""

    def quit_for_signal(self, signum: int) -> None:
        """Quit as the q key does, because `signum` came (SIGTERM: kill, timeout; SIGINT from outside the terminal).
        Called inside a signal handler: it only schedules the quit on the app's event loop (each label is
        stored when its key is pressed, so nothing is left to save)."""
        self.stop_signal = signum
        if self._signal_loop is not None:
            self._signal_loop.call_soon_threadsafe(self.exit)  # (on_mount quits if it comes before the loop is known)

    async def on_mount(self) -> None:
        import asyncio

        self._signal_loop = asyncio.get_running_loop()
        if self.stop_signal is not None:
            self.exit()
            return
        if self.start_in_grid:
            await self.switch_to_grid(push=True)
        else:
            await self.switch_to_single(push=True)
        self._views_ready = True
        self._check_size(self.size.width, self.size.height)

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, cols: int, rows: int) -> None:
        from lrfp.label.too_small_screen import TooSmallScreen

        if not self._views_ready:
            return  # on_mount checks once the first view is up, so the notice lands on top of it
        small = cols < MIN_COLS or rows < MIN_ROWS
        if small and self._too_small is None:
            self._too_small = TooSmallScreen(too_small_message(cols, rows))
            self.push_screen(self._too_small)
        elif small:
            self._too_small.update(too_small_message(cols, rows))
        elif self._too_small is not None:
            screen, self._too_small = self._too_small, None
            if self.screen is screen:
                self.pop_screen()

    def switch_to_grid(self, push: bool = False):  # noqa: ANN201 - an awaitable
        from lrfp.label.grid_screen import GridScreen

        return (self.push_screen if push else self.switch_screen)(GridScreen())

    def switch_to_single(self, push: bool = False):  # noqa: ANN201 - an awaitable
        from lrfp.label.single_screen import SingleScreen

        return (self.push_screen if push else self.switch_screen)(SingleScreen())

    def _handle_exception(self, error: Exception) -> None:
        """A full disk while storing a key is not a bug: quit as q does (no traceback; the terminal is restored)
        and let `run_label_app` raise DiskFullError. Anything else is Textual's (traceback, then LabelAppError).
        Textual has no public hook for an exception inside a handler; this overrides its private one."""
        from lrfp.errors import disk_full

        if disk_full(error):
            self.disk_full_error = error
            self.exit(return_code=1)
            return
        super()._handle_exception(error)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key_time = event.time
        await super().on_event(event)

    def crop_drawn(self, crop_id: int | None) -> None:
        """A screen has put a new crop up; report when it reached the terminal (benchmark only)."""
        if self.latency_probe is not None:
            key_time = self._last_key_time
            self.call_after_refresh(lambda: self.latency_probe(key_time, time.monotonic(), crop_id))


NOT_A_TERMINAL = ("lrfp label needs an interactive terminal: its {which} (a pipe, a file, "
                  "/dev/null or cron). Run it in a terminal window, without {redirects}; nothing was drawn or stored.")
REDIRECTS = {
    "standard input": "`<` or a pipe into it",
    "standard output": "`>` or a pipe after it",
    "standard error": "`2>` (the app draws its screen on standard error)",
}
"""What to leave out of the command line, per stream that is not a terminal."""


def require_terminal(stdin=None, stdout=None, stderr=None) -> None:
    """Refuse to start the app unless stdin, stdout and stderr are terminals.

    Textual reads keys from stdin and draws the app on stderr (its Linux driver writes to sys.__stderr__); the
    summary goes to stdout. Piped keys would become stored labels, and a redirected stdout or stderr would
    make the user label blind while escape codes fill a file, so this runs before the app draws or reads
    anything. Raises NotATerminalError (a UsageError: exit 2) naming the stream(s) that are not terminals and what to leave out.
    """
    import sys

    streams = {"standard input": stdin or sys.__stdin__, "standard output": stdout or sys.__stdout__,
               "standard error": stderr or sys.__stderr__}
    bad = [name for name, stream in streams.items() if not _is_tty(stream)]
    if bad:
        which = (f"{bad[0]} is not a terminal" if len(bad) == 1
                 else f"{', '.join(bad[:-1])} and {bad[-1]} are not terminals")
        redirects = [REDIRECTS[b] for b in bad]
        redirects = redirects[0] if len(redirects) == 1 else f"{', '.join(redirects[:-1])} or {redirects[-1]}"
        raise NotATerminalError(NOT_A_TERMINAL.format(which=which, redirects=redirects))


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


APP_CRASHED = ("lrfp label stopped on an unexpected error ({error}): every label typed before it is stored; "
               "rerun `lrfp label` to resume, and please report it with the traceback above")


def _raise_if_crashed(app: LabelApp) -> None:
    """Raise LabelAppError (exit 1) when an exception ended the app: Textual catches it, prints its traceback and
    returns from run() as if the user had quit, which would exit 0."""
    if app.return_code:
        error = getattr(app, "_exception", None)  # Textual keeps the exception here; no public accessor
        what = f"{type(error).__name__}: {error}" if error is not None else f"return code {app.return_code}"
        from lrfp.errors import LabelAppError

        raise LabelAppError(APP_CRASHED.format(error=what))


def termios_error() -> type[Exception]:
    try:
        import termios

        return termios.error
    except ImportError:  # Windows
        return OSError


@contextlib.contextmanager
def _terminal_restored():  # noqa: ANN202 - a context manager
    """Put the terminal's modes back as they were before the app, however it ended (Textual restores them itself;
    this is the safety net that keeps a shell from being left raw, keys not echoed)."""
    import sys

    try:
        import termios

        fd = sys.__stdin__.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, AttributeError, ValueError, OSError, termios_error()):  # no terminal, or no termios
        yield
        return
    try:
        yield
    finally:
        try:
            if termios.tcgetattr(fd) != saved:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        except (OSError, termios.error):
            pass  # the terminal is gone (closed window): nothing to restore


@dataclass(frozen=True)
class LabelRunResult:
    """How `lrfp label` ended: `message` says why the app did not start (nothing to show), else None and
    `summary` says what the session did."""

    message: str | None = None
    summary: SessionSummary | None = None
    stop_signal: int | None = None
    """The signal (SIGTERM, or SIGINT from outside the terminal) that ended the app; None when the user quit."""


def run_label_app(store_dir, cfg: LabelConfig, *, grid: bool = False) -> LabelRunResult:
    """Open the store, build the session and run the app until the user quits, or a SIGTERM (or a SIGINT sent
    from outside the terminal) makes it quit the same way: `stop_signal` says so.

    Raises UsageError for a bad `cfg`, or NotATerminalError when stdin, stdout or stderr is not a terminal (see
    `require_terminal`), before the app draws anything or any label is stored; DataDirError when there is no
    store at `store_dir`; DiskFullError when the disk filled while a label was stored (every label stored before
    it stays); LabelAppError (exit 1) when an unexpected error ended the app.
    """
    from lrfp.store import open_store

    with open_store(store_dir, create=False) as store:
        session = LabelSession(store, cfg)
        message = session.empty_message()
        if message is not None:
            return LabelRunResult(message=message)
        require_terminal()
        from lrfp.interrupts import first_signal_stops

        app = LabelApp(session, grid=grid)
        # SIGTERM quits as q does, the terminal restored; a second signal while it quits does the same, as
        # raising it inside the app's event loop would leave the terminal raw and on the alternate screen
        with first_signal_stops(app.quit_for_signal, second_stops_at_once=False), _terminal_restored():
            app.run()
        if app.disk_full_error is not None:
            from lrfp.errors import DiskFullError

            raise DiskFullError(store_dir) from app.disk_full_error
        _raise_if_crashed(app)
        session.refresh_counts(rescope=True)  # crops added while it ran count too
        return LabelRunResult(summary=session.summary(), stop_signal=app.stop_signal)
