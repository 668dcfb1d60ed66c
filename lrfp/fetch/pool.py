"""Fetch's videos in worker processes (`--workers N`), with recovery when a worker process dies."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

from lrfp.fetch.config import FetchConfig, VideoStatus
from lrfp.fetch.detect import close_idle_detectors
from lrfp.fetch.detect import ResolvedDetector
from lrfp.fetch.results import Emit, FetchEvent, VideoResult
from lrfp.fetch.video import end_redo, fetch_video
from lrfp.manifest import ManifestRow
from lrfp.procpool import SpawnPool, report, stop_requested
from lrfp.store import open_store


STOPPED = ("its worker process was ended by the signal that stopped the run (SIGTERM to the process group); rerun "
           "to finish (crops stored so far are kept)")
"""The error of a video whose worker a Ctrl-C or SIGTERM to the whole process group ended mid-video."""


def _worker_init() -> None:
    import cv2
    from multiprocessing import util

    cv2.setNumThreads(1)  # one core per worker: N workers use N cores, without oversubscription
    # The worker's videos share one detector; close it as the worker exits, while MediaPipe's threads still run
    # (multiprocessing's finalizers run before thread shutdown and atexit).
    util.Finalize(None, close_idle_detectors, exitpriority=10)


def _worker_fetch(data_dir: Path, row: ManifestRow, cfg: FetchConfig, model: ResolvedDetector) -> VideoResult:
    if stop_requested():
        return VideoResult(row.name, row.url, VideoStatus.pending, skipped=True)
    with open_store(data_dir) as store:
        return fetch_video(store, row, cfg, model, report, stop_requested, threads=1)


def run_pool(data_dir: Path, todo: list[ManifestRow], cfg: FetchConfig, model: ResolvedDetector, emit: Emit,
             stop: threading.Event, results: dict[str, VideoResult]) -> bool:
    """Run the rows in `cfg.workers` processes; returns True if stopped. If a worker process dies (out of
    memory, a crash in a native library, a kill), the videos that were being processed get status `error`
    with that reason, and a new pool goes on with the rows not started yet."""
    left = list(todo)
    while left and not stop.is_set():
        left = _run_pool_once(data_dir, left, cfg, model, emit, stop, results)
    return stop.is_set()


def _run_pool_once(data_dir, todo, cfg, model, emit, stop, results) -> list[ManifestRow]:
    """One process pool over `todo`. Returns the rows not started because the pool broke (else [])."""
    from concurrent.futures.process import BrokenProcessPool

    pending: dict[Future, ManifestRow] = {}
    broken: list[ManifestRow] = []
    with SpawnPool(cfg.workers, _worker_init, terminate_on_error=False) as pool:
        for row in todo:
            pending[pool.submit(_worker_fetch, data_dir, row, cfg, model)] = row
        try:
            while pending:
                if stop.is_set():
                    pool.request_stop()
                for fut in pool.wait_any(pending, emit):
                    row = pending.pop(fut)
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        broken.append(row)
                        continue
                    except BaseException:  # a run-level error (e.g. the disk is full): stop the other workers too
                        pool.request_stop()
                        raise
                    results[row.name] = r
                    if not r.skipped:
                        emit(FetchEvent("done", row.name, result=r))
        except BaseException:
            pool.request_stop()
            raise
        finally:
            if stop.is_set():
                pool.request_stop()
            pool.drain(emit)
    pool.drain(emit)  # what the workers sent just before they exited
    if not broken:
        return []
    # The store tells which of them a worker had started (status running) and which never began (pending).
    how = "; ".join(sorted(set(pool.deaths().values()))) or "stopped by signal 15 (SIGTERM)"
    with open_store(data_dir) as store:
        started = [r for r in broken if (src := store.find_source(r.name)) is None or src["status"] != VideoStatus.pending]
        not_started = [r for r in broken if r not in started]
        if stop.is_set():  # Ctrl-C or SIGTERM to the whole process group (timeout, systemd) ended the workers too
            for row in started:
                results[row.name] = r = VideoResult(row.name, row.url, VideoStatus.interrupted, STOPPED)
                store.upsert_source(row.name, "video", status=r.status, error=r.error)
                emit(FetchEvent("done", row.name, result=r))
            return []  # the rows not started stay pending, as on Ctrl-C
        if not started:  # the pool broke before any video began: do not loop on it
            started, not_started = not_started, []
            reason = f"the worker processes died before they started ({how})"
        else:
            reason = (f"a worker process died ({how}) while this video was being processed (every worker of the "
                      "pool is stopped then, so it may have been another video's); rerun with --retry-failed")
        for row in started:
            results[row.name] = r = VideoResult(row.name, row.url, VideoStatus.error, reason)
            store.upsert_source(row.name, "video", status=r.status, error=r.error)
            if (kept := end_redo(store, row.name, r.status)) is not None:
                r.kept_earlier = kept
                r.error = f"{reason}; the redo failed, so the earlier run's status ({kept}), settings and crops are kept"
            emit(FetchEvent("done", row.name, result=r))
    if not_started:
        emit(FetchEvent("message",
                        message=f"a worker process died ({how}); going on with {len(not_started)} video(s) in new workers"))
    return not_started
