"""Fetch's videos in worker processes (`--workers N`), with recovery when a worker process dies."""

from __future__ import annotations

import os
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
from lrfp.store import Store, open_store


STOPPED = ("its worker process was ended by the signal that stopped the run (SIGTERM to the process group); rerun "
           "to finish (crops stored so far are kept)")
"""The error of a video whose worker a Ctrl-C or SIGTERM to the whole process group ended mid-video."""


def _worker_init(started_by) -> None:  # noqa: ANN001 - a shared ctypes array of process ids
    import cv2
    from multiprocessing import util

    from lrfp.procpool import WORKER

    WORKER["started_by"] = started_by

    cv2.setNumThreads(1)  # one core per worker: N workers use N cores, without oversubscription
    # The worker's videos share one detector; close it as the worker exits, while MediaPipe's threads still run
    # (multiprocessing's finalizers run before thread shutdown and atexit).
    util.Finalize(None, close_idle_detectors, exitpriority=10)


def _worker_fetch(i: int, data_dir: Path, row: ManifestRow, cfg: FetchConfig, model: ResolvedDetector) -> VideoResult:
    from lrfp.procpool import WORKER

    if stop_requested():
        return VideoResult(row.name, row.url, VideoStatus.pending, skipped=True)
    # Shared memory, written at once (a queue's report could be lost with the process): which process has row i.
    WORKER["started_by"][i] = os.getpid()
    with open_store(data_dir) as store:
        return fetch_video(store, row, cfg, model, report, stop_requested, threads=1)


def run_pool(data_dir: Path, todo: list[ManifestRow], cfg: FetchConfig, model: ResolvedDetector, emit: Emit,
             stop: threading.Event, results: dict[str, VideoResult]) -> bool:
    """Run the rows in `cfg.workers` processes; returns True if stopped. If a worker process dies (out of
    memory, a crash in a native library, a kill), the video it was processing gets status `error` with that
    cause (procpool.exit_cause); the pool then stops every other worker, and a new pool starts their videos
    over (fetch_video redoes a video cut short: its crops come out identical and are not stored twice) and goes
    on with the rows not started yet. A worker that dies idle (before its first video or between two) costs no
    video: every row its death stopped starts over, unless a pool ends that way twice with no video begun or
    done (workers that cannot start at all), which fails them."""
    left, barren = list(todo), 0
    while left and not stop.is_set():
        left, progressed = _run_pool_once(data_dir, left, cfg, model, emit, stop, results, give_up=barren >= 1)
        barren = 0 if progressed else barren + 1
    return stop.is_set()


def _run_pool_once(data_dir, todo, cfg, model, emit, stop, results, give_up=False) -> tuple[list[ManifestRow], bool]:
    """One process pool over `todo`. Returns (the rows to run in a new pool because this one broke, else []; whether
    any video was begun or done). give_up: fail the rows of a pool whose workers all died idle, not restart them."""
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    pending: dict[Future, int] = {}
    broken: list[int] = []
    started_by = mp.get_context("spawn").RawArray("q", len(todo))  # row index -> the pid that began it (0: none)
    with SpawnPool(cfg.workers, _worker_init, (started_by,), terminate_on_error=False) as pool:
        for i, row in enumerate(todo):
            pending[pool.submit(_worker_fetch, i, data_dir, row, cfg, model)] = i
        try:
            while pending:
                if stop.is_set():
                    pool.request_stop()
                for fut in pool.wait_any(pending, emit):
                    i = pending.pop(fut)
                    row = todo[i]
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        broken.append(i)
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
    progressed = any(started_by) or len(broken) < len(todo)
    if not broken:
        return [], progressed
    deaths = pool.deaths()  # pid -> cause, for the workers that died by themselves (not stopped by the pool)
    how = "; ".join(sorted(set(deaths.values()))) or "stopped by signal 15 (SIGTERM)"
    with open_store(data_dir) as store:
        if stop.is_set():  # Ctrl-C or SIGTERM to the whole process group (timeout, systemd) ended the workers too
            for i in (i for i in broken if started_by[i]):
                row, cause = todo[i], deaths.get(started_by[i])  # a worker that died by itself meanwhile (a kill -9)
                why = STOPPED if cause is None else (f"its worker process died ({cause}) while the run was stopping; "
                                                     "rerun to finish (crops stored so far are kept)")
                r = VideoResult(row.name, row.url, VideoStatus.interrupted, why)
                store.upsert_source(row.name, "video", status=r.status, error=r.error)
                results[row.name] = r  # after the write: a row without a result is recorded by pipeline.end_running
                emit(FetchEvent("done", row.name, result=r))
            return [], progressed  # the rows not started stay pending, as on Ctrl-C
        dead = {i: deaths[started_by[i]] for i in broken if started_by[i] in deaths}
        if dead:
            for i, cause in dead.items():
                _fail(store, todo[i], f"its worker process died ({cause}) while processing this video; rerun with "
                                      "--retry-failed", results, emit)
            again = [todo[i] for i in broken if i not in dead]
            restarted = sum(1 for i in broken if i not in dead and started_by[i])
        elif deaths and not give_up:
            # a worker died idle (before its first video or between two): no video's fault; all start over
            again = [todo[i] for i in broken]
            restarted = sum(1 for i in broken if started_by[i])
        else:
            # No video's worker died by itself (someone's SIGTERM to one worker looks like the pool's own stop), or
            # the workers died idle twice running: the videos being processed fail, as one of them may be the
            # cause (all of them where none had begun: do not loop on pools that cannot start); the rest go on.
            started = [i for i in broken if started_by[i]] or broken
            reason = (f"a worker process died ({how}) while this video was being processed (every worker of the pool "
                      "is stopped then, so it may have been another video's); rerun with --retry-failed"
                      if any(started_by[i] for i in broken) else
                      f"the worker processes died before they started ({how}); run with --workers 1 to see the error, "
                      "then rerun with --retry-failed")
            for i in started:
                _fail(store, todo[i], reason, results, emit)
            again = [todo[i] for i in broken if i not in started]
            restarted = 0
    if again:
        emit(FetchEvent("message", message=f"a worker process died ({how}); going on with {len(again)} video(s) in new "
                                           f"workers" + (f", {restarted} of them started over" if restarted else "")))
    return again, progressed


def _fail(store: Store, row: ManifestRow, reason: str, results: dict[str, VideoResult], emit: Emit) -> None:
    """Record `row`'s video as failed (`error`, `reason`); a redo of it gives back the earlier run (video.end_redo)."""
    r = VideoResult(row.name, row.url, VideoStatus.error, reason)
    store.upsert_source(row.name, "video", status=r.status, error=r.error)
    if (kept := end_redo(store, row.name, r.status)) is not None:
        r.kept_earlier = kept
        r.error = f"{reason}; the redo failed, so the earlier run's status ({kept}), settings and crops are kept"
    results[row.name] = r  # after the writes: a row without a result is recorded by pipeline.end_running
    emit(FetchEvent("done", row.name, result=r))
