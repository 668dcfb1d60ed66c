"""A process pool for lrfp's parallel jobs (fetch's videos, bench's runs).

Spawned workers (no fork after threads or native libraries; CUDA cannot be forked) that leave Ctrl-C to
the parent, a stop event the parent sets and workers poll, per-worker state set once by an initializer,
and a queue through which workers report while they run (the parent drains it). Imports nothing heavy.
"""

from __future__ import annotations

import queue as queue_mod
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable

WORKER: dict[str, Any] = {}
"""Worker-process state: 'queue' and 'stop' (set by the pool), plus what the caller's initializer adds."""


def _init(q: Any, stop: Any, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells workers through `stop`
    WORKER["queue"], WORKER["stop"] = q, stop
    if initializer is not None:
        initializer(*initargs)


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
                 *, manager_queue: bool = False, terminate_on_error: bool = True) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")
        # A manager's queue may be passed inside submitted arguments; a plain one only through the initializer.
        self._manager = self.ctx.Manager() if manager_queue else None
        self.queue = (self._manager or self.ctx).Queue()
        self.stop = self.ctx.Event()
        self.terminate_on_error = terminate_on_error
        self.executor = ProcessPoolExecutor(
            workers, mp_context=self.ctx, initializer=_init, initargs=(self.queue, self.stop, initializer, initargs))

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        return self.executor.submit(fn, *args, **kwargs)

    def request_stop(self) -> None:
        self.stop.set()

    def drain(self, handle: Callable[[Any], None]) -> None:
        """Hand every item that has arrived from the workers to `handle`, in order. Items still in flight
        (a worker's queue feeder thread sends them) arrive later: drain once more after the pool is closed."""
        while True:
            try:
                item = self.queue.get_nowait()
            except queue_mod.Empty:
                return
            handle(item)

    def wait_any(self, futures: Iterable[Future], handle: Callable[[Any], None], timeout: float = 0.1) -> set[Future]:
        """Wait up to `timeout` s for one future to finish, draining reports meanwhile; returns the finished ones."""
        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
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
                self._manager.shutdown()
