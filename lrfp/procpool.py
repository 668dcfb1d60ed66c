"""A process pool for lrfp's parallel jobs (fetch's videos, bench's runs).

Spawned workers (no fork after threads or native libraries; CUDA cannot be forked) that leave Ctrl-C to
the parent, a stop event the parent sets and workers poll, per-worker state set once by an initializer,
and a queue through which workers report while they run (the parent drains it). Imports nothing heavy.

When a worker process dies (the OOM killer's SIGKILL, a segfault in a native library), ProcessPoolExecutor
fails every task not finished with BrokenProcessPool and stops the other workers (SIGTERM). `deaths()` then says
which process died by itself and how (`exit_cause`), and `started` which task each process was running, so a
caller can fail only the task(s) of the dead process and submit the others to a new pool. The Manager process
of `manager_queue` dying ends the pool: `drain` raises WorkerPoolError.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Hashable, Iterable

from lrfp.errors import WorkerPoolError

WORKER: dict[str, Any] = {}
"""Worker-process state: 'queue' and 'stop' (set by the pool), plus what the caller's initializer adds."""


def _init(q: Any, stop: Any, initializer: Callable[..., None] | None, initargs: tuple, bulk_file: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells workers through `stop`
    WORKER["queue"], WORKER["stop"] = q, stop
    if bulk_file is not None:
        import pickle

        with open(bulk_file, "rb") as f:
            initargs = (pickle.load(f), *initargs)
    if initializer is not None:
        initializer(*initargs)


class _Started:
    """A worker's first report for a task submitted with a key: (key, the worker's process id)."""

    def __init__(self, key: Hashable, pid: int) -> None:
        self.key, self.pid = key, pid


def _call_reporting_start(key: Hashable, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    report(_Started(key, os.getpid()))
    return fn(*args, **kwargs)


def exit_cause(exitcode: int | None) -> str:
    """How a process ended, in words: `multiprocessing.Process.exitcode` (negative: killed by that signal)."""
    if exitcode is None:
        return "its exit status is unknown"
    if exitcode >= 0:
        return f"it exited with status {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "an unknown signal"
    why = {signal.SIGKILL: ": out of memory (the kernel's OOM killer), or a kill -9?",
           signal.SIGSEGV: ": a crash in native code (a segmentation fault)",
           signal.SIGBUS: ": a crash in native code (a bus error; a full /dev/shm?)",
           signal.SIGABRT: ": a native library aborted"}.get(-exitcode, "")
    return f"killed by signal {-exitcode} ({name}){why}"


def report(item: Any) -> None:
    """From a worker: send `item` to the parent (it reaches the parent's `drain` handler)."""
    WORKER["queue"].put(item)


def stop_requested() -> bool:
    """From a worker: True once the parent asked the workers to stop."""
    return WORKER["stop"].is_set()


class SpawnPool:
    """`workers` spawned processes. Use as a context manager; on an exception the workers are terminated
    when `terminate_on_error`, else the pool waits for them (after `request_stop`, they stop soon)."""

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = (),
                 *, bulk: Any = None, manager_queue: bool = False, terminate_on_error: bool = True) -> None:
        """bulk: data every worker needs that may be large (bench's decoded images): pickled once into a temporary
        file (removed with the pool) and given to `initializer` as its first argument. Not through `initargs`:
        spawn writes a worker's start data into a pipe while the parent still holds the pipe's read end
        (CPython 3.11 popen_spawn_posix), so a worker that dies as it starts (the OOM killer, a kill) blocks the
        parent forever on a write larger than the pipe (64 KiB on Linux). `initargs` must stay small."""
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")
        self._bulk_file = _write_bulk(bulk) if bulk is not None else None
        # A manager's queue may be passed inside submitted arguments; a plain one only through the initializer.
        try:
            self._manager = self.ctx.Manager() if manager_queue else None
        except BaseException:
            self._remove_bulk()
            raise
        self.queue = (self._manager or self.ctx).Queue()
        self.stop = self.ctx.Event()
        self.terminate_on_error = terminate_on_error
        self.executor = ProcessPoolExecutor(
            workers, mp_context=self.ctx, initializer=_init,
            initargs=(self.queue, self.stop, initializer, initargs, self._bulk_file))
        self.started: dict[Hashable, int] = {}
        """key -> the process id of the worker that began the task submitted with that key (`submit_keyed`)."""
        self._processes: dict[int, Any] = {}  # every worker process seen, by pid (the executor forgets them)
        self._nudged = False

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        fut = self.executor.submit(fn, *args, **kwargs)
        self._note_processes()
        return fut

    def submit_keyed(self, key: Hashable, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """submit(); the worker reports `key` before it calls fn, and `started[key]` then holds its pid. Only with
        `manager_queue` is that report certain to arrive before the worker can die (a plain queue sends late)."""
        return self.submit(_call_reporting_start, key, fn, args, kwargs)

    def _note_processes(self) -> None:
        self._processes.update(getattr(self.executor, "_processes", None) or {})

    def deaths(self) -> dict[int, str]:
        """After BrokenProcessPool: pid -> how it ended, for each worker process that died by itself (not the
        ones the executor stopped then with SIGTERM; a worker killed by someone with SIGTERM is not told apart
        from those). Waits for the executor to finish stopping the workers."""
        self.executor.shutdown(wait=True)
        out = {}
        for pid, proc in self._processes.items():
            proc.join(5)
            if proc.exitcode is not None and proc.exitcode != -signal.SIGTERM:
                out[pid] = exit_cause(proc.exitcode)
        return out

    def request_stop(self) -> None:
        self.stop.set()

    def drain(self, handle: Callable[[Any], None]) -> None:
        """Hand every item that has arrived from the workers to `handle`, in order. Items still in flight
        (a worker's queue feeder thread sends them) arrive later: drain once more after the pool is closed.

        Raises WorkerPoolError when the Manager process of `manager_queue` died (the reports in it are lost)."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue_mod.Empty:
                return
            except (OSError, EOFError) as e:  # a manager's queue whose process is gone: BrokenPipeError, EOFError ...
                if self._manager is None:
                    raise
                proc = self._manager._process
                proc.join(1)
                raise WorkerPoolError(
                    f"the Manager process that carries the worker processes' reports died ({exit_cause(proc.exitcode)}); "
                    "the reports it held are lost, and the workers are stopped") from e
            if isinstance(item, _Started):
                self.started[item.key] = item.pid
                continue
            handle(item)

    def wait_any(self, futures: Iterable[Future], handle: Callable[[Any], None], timeout: float = 0.1) -> set[Future]:
        """Wait up to `timeout` s for one future to finish, draining reports meanwhile; returns the finished ones."""
        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        self._note_processes()
        if not self._nudged and any(proc.exitcode is not None for proc in self._processes.values()):
            # The executor's manager thread watches the workers it knew when it began waiting (CPython 3.11):
            # one spawned after that can die unnoticed until the next result. A no-op task wakes the thread.
            self._nudged = True
            with contextlib.suppress(RuntimeError):  # (BrokenProcessPool: it noticed already)
                self.executor.submit(int)
        self.drain(handle)
        return done

    def terminate(self) -> None:
        """Stop the workers now (running tasks are lost). ProcessPoolExecutor has no public way to do this."""
        for proc in list((getattr(self.executor, "_processes", None) or {}).values()):
            proc.terminate()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def __enter__(self) -> "SpawnPool":
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        try:
            if exc_type is not None and self.terminate_on_error:
                self.terminate()
            else:
                self.close()
        finally:
            if self._manager is not None:
                self._manager.shutdown()  # (a dead one too: it only joins the process then)
            self._remove_bulk()

    def _remove_bulk(self) -> None:
        if self._bulk_file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._bulk_file)


def _write_bulk(bulk: Any) -> str:
    """`bulk` pickled into a new temporary file (only this user can read it); its path."""
    import pickle
    import tempfile

    fd, path = tempfile.mkstemp(prefix="lrfp-pool-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(bulk, f, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path
