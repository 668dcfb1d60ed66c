"""`lrfp fetch`: manifest rows -> download -> frames -> faces -> tracks -> crops, with a status per video.

Resumable (videos whose status is final are skipped; a video cut short is redone and its crops,
identical bytes, are not stored twice), parallel (`workers` processes, each with its own Store), and
stoppable (Ctrl-C: the current frame finishes, the video is marked `interrupted`, what is stored stays).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from lrfp.errors import InputError, UsageError
from lrfp.fetch.detect import close_idle_detectors
from lrfp.fetch.download import DownloadFailed, DownloadOptions, DownloadStopped, describe_file, download_key, download_video
from lrfp.fetch.frames import NotAVideo, VideoInfo, probe_video, sample_frames
from lrfp.fetch.models import MODELS, ResolvedModel, resolve_model
from lrfp.manifest import ManifestRow, read_manifest
from lrfp.store import CropOrigin, Store, open_store

log = logging.getLogger(__name__)

DONE = ("ok", "no_faces")
"""Final statuses: a rerun skips these videos."""
FAILED = ("download_failed", "not_a_video", "too_high_res", "bad_range", "error")
"""Failed statuses: a rerun skips them unless --retry-failed."""
UNFINISHED = ("pending", "running", "interrupted")
"""Never finished (new, killed or stopped): a rerun does them."""

DOWNLOADS_DIR = "downloads"
CONTEXT_WIDTH = 480  # the context JPEG saved for each frame that yields a crop is at most this wide
WRITER_BATCH_S = 1.0  # the writer stores what finished within this long in one batch (one sync, one commit)
WRITER_BATCH_TRACKS = 64


@dataclass(frozen=True)
class FetchConfig:
    every_s: float = 0.5
    min_face: int = 20
    min_score: float = 0.5
    margin: float = 0.25
    per_track: int = 3
    model: str = "full"
    models_dir: Path | None = None
    workers: int = 1
    retry_failed: bool = False
    keep_videos: bool = False
    download: DownloadOptions = field(default_factory=DownloadOptions)

    def check(self) -> None:
        if not self.every_s > 0:
            raise UsageError(f"--every must be more than 0 seconds (got {self.every_s})")
        if self.min_face < 1:
            raise UsageError(f"--min-face must be at least 1 px (got {self.min_face})")
        if not 0 <= self.min_score <= 1:
            raise UsageError(f"--min-score must be between 0 and 1 (got {self.min_score})")
        if not 0 <= self.margin <= 2:
            raise UsageError(f"--margin must be between 0 and 2 (got {self.margin})")
        if self.per_track < 1:
            raise UsageError(f"--per-track must be at least 1 (got {self.per_track})")
        if self.model not in MODELS:
            raise UsageError(f"--model must be one of {', '.join(MODELS)} (got {self.model!r})")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1 (got {self.workers})")
        if self.download.cookies is not None and not Path(self.download.cookies).is_file():
            raise InputError(f"cookies file {self.download.cookies} does not exist")


@dataclass
class VideoResult:
    name: str
    url: str
    status: str
    error: str | None = None
    skipped: bool = False  # not processed in this run (already done, or failed earlier)
    frames_sampled: int = 0
    faces_found: int = 0
    tracks: int = 0
    crops_kept: int = 0
    crops_new: int = 0
    video_s: float = 0.0
    wall_s: float = 0.0


@dataclass(frozen=True)
class FetchEvent:
    """What the CLI shows. kind: 'queued', 'start', 'progress', 'done' (with result) or 'message'."""

    kind: str
    video: str | None = None
    stage: str | None = None  # 'download' or 'frames'
    done: float = 0.0
    total: float | None = None
    message: str | None = None
    result: VideoResult | None = None


@dataclass
class FetchResult:
    videos: list[VideoResult]
    wall_s: float = 0.0
    interrupted: bool = False
    model: ResolvedModel | None = None

    @property
    def by_status(self) -> Counter:
        return Counter(v.status for v in self.videos)

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.status not in DONE]

    @property
    def all_ok(self) -> bool:
        return not self.interrupted and not self.failed

    def total(self, attr: str) -> float:
        return sum(getattr(v, attr) for v in self.videos)

    @property
    def speed(self) -> float | None:
        """Video-seconds processed per wall-second (this run)."""
        return self.total("video_s") / self.wall_s if self.wall_s > 0 and self.total("video_s") else None


Emit = Callable[[FetchEvent], None]


# -- the run ------------------------------------------------------------------------------------------


def fetch_manifest(manifest: Path, data_dir: Path, cfg: FetchConfig, on_event: Emit | None = None) -> FetchResult:
    """Fetch every row of the manifest into the store at data_dir. The manifest is validated first."""
    t0 = time.monotonic()
    emit = on_event or (lambda e: None)
    cfg.check()
    rows = read_manifest(manifest)
    with open_store(data_dir) as store:
        todo, skipped = plan(store, rows, cfg, manifest)
    model = resolve_model(cfg.model, cfg.models_dir, on_pull=lambda m: emit(FetchEvent("message", message=m)))
    for r in skipped:
        emit(FetchEvent("done", r.name, result=r))
    for row in todo:
        emit(FetchEvent("queued", row.name))
    results: dict[str, VideoResult] = {r.name: r for r in skipped}
    stop = threading.Event()
    with _first_ctrl_c_sets(stop, emit):
        if cfg.workers == 1 or len(todo) <= 1:
            try:
                interrupted = _run_here(data_dir, todo, cfg, model, emit, stop, results)
            finally:
                close_idle_detectors()  # the videos shared one detector (workers close theirs when they exit)
        else:
            interrupted = _run_pool(data_dir, todo, cfg, model, emit, stop, results)
    ordered = [results.get(r.name) or VideoResult(r.name, r.url, "pending", skipped=True) for r in rows]
    return FetchResult(ordered, time.monotonic() - t0, interrupted, model)


def plan(store: Store, rows: list[ManifestRow], cfg: FetchConfig, manifest: Path) -> tuple[list[ManifestRow], list[VideoResult]]:
    """Split rows into those to process now and those skipped (final status, or failed without --retry-failed)."""
    conflicts = []
    todo: list[ManifestRow] = []
    skipped: list[VideoResult] = []
    for row in rows:
        src = store.find_source(row.name)
        if src is not None and (src["kind"] != "video" or src["url"] != row.url):
            what = "an imported folder" if src["kind"] != "video" else f"another URL ({src['url']})"
            conflicts.append(f"{manifest}:{row.line}: source name {row.name!r} is already {what} in the store; give this row another id")
            continue
        status = src["status"] if src is not None else None
        if status in DONE or (status in FAILED and not cfg.retry_failed):
            skipped.append(VideoResult(row.name, row.url, status, src["error"], skipped=True))
        else:
            todo.append(row)
    if conflicts:
        raise InputError("\n".join(conflicts))
    for row in todo:
        store.upsert_source(row.name, "video", url=row.url, status="pending", error=None)
    return todo, skipped


@contextlib.contextmanager
def _first_ctrl_c_sets(stop: threading.Event, emit: Emit):
    """First Ctrl-C: finish the current frame and stop cleanly. A second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        emit(FetchEvent("message", message="stopping: the current videos are marked interrupted (Ctrl-C again to quit now)"))

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_here(data_dir, todo, cfg, model, emit, stop, results) -> bool:
    with open_store(data_dir) as store:
        for row in todo:
            if stop.is_set():
                break
            results[row.name] = r = fetch_video(store, row, cfg, model, emit, stop.is_set)
            emit(FetchEvent("done", row.name, result=r))
    return stop.is_set()


# Worker-process state, set by _worker_init (spawned processes share nothing else with the parent).
_W: dict[str, Any] = {}


def _worker_init(stop_event: Any, queue: Any) -> None:
    import cv2
    from multiprocessing import util

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into stop_event
    cv2.setNumThreads(1)  # one core per worker: N workers use N cores, without oversubscription
    _W["stop"], _W["queue"] = stop_event, queue
    # The worker's videos share one detector; close it as the worker exits, while MediaPipe's threads still run
    # (multiprocessing's finalizers run before thread shutdown and atexit).
    util.Finalize(None, close_idle_detectors, exitpriority=10)


def _worker_fetch(data_dir: Path, row: ManifestRow, cfg: FetchConfig, model: ResolvedModel) -> VideoResult:
    stop, queue = _W["stop"], _W["queue"]
    if stop.is_set():
        return VideoResult(row.name, row.url, "pending", skipped=True)
    with open_store(data_dir) as store:
        return fetch_video(store, row, cfg, model, queue.put, stop.is_set, threads=1)


def _run_pool(data_dir, todo, cfg, model, emit, stop, results) -> bool:
    """Run the rows in `cfg.workers` processes. If a worker process dies (out of memory, a crash in a native
    library, a kill), the videos that were being processed get status `error` with that reason, and a new
    pool goes on with the rows not started yet."""
    left = list(todo)
    while left and not stop.is_set():
        left = _run_pool_once(data_dir, left, cfg, model, emit, stop, results)
    return stop.is_set()


def _run_pool_once(data_dir, todo, cfg, model, emit, stop, results) -> list[ManifestRow]:
    """One process pool over `todo`. Returns the rows not started because the pool broke (else [])."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # no fork after threads/native libraries
    stop_event, q = ctx.Event(), ctx.Queue()
    pending: dict[Future, ManifestRow] = {}
    broken: list[ManifestRow] = []

    def drain() -> None:
        while True:
            try:
                emit(q.get_nowait())
            except queue_mod.Empty:
                return

    with ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=_worker_init, initargs=(stop_event, q)) as pool:
        for row in todo:
            pending[pool.submit(_worker_fetch, data_dir, row, cfg, model)] = row
        try:
            while pending:
                if stop.is_set():
                    stop_event.set()
                done, _ = wait(list(pending), timeout=0.1, return_when=FIRST_COMPLETED)
                drain()
                for fut in done:
                    row = pending.pop(fut)
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        broken.append(row)
                        continue
                    results[row.name] = r
                    if not r.skipped:
                        emit(FetchEvent("done", row.name, result=r))
        finally:
            if stop.is_set():
                stop_event.set()
            drain()
    if not broken:
        return []
    # The store tells which of them a worker had started (status running) and which never began (pending).
    with open_store(data_dir) as store:
        started = [r for r in broken if (src := store.find_source(r.name)) is None or src["status"] != "pending"]
        not_started = [r for r in broken if r not in started]
        if not started:  # the pool broke before any video began: do not loop on it
            started, not_started = not_started, []
            reason = "the worker processes died before they started"
        else:
            reason = ("a worker process died while this video was being processed (out of memory, a crash, or a kill; "
                      "every worker of the pool is stopped then, so it may have been another video's); "
                      "rerun with --retry-failed")
        for row in started:
            results[row.name] = r = VideoResult(row.name, row.url, "error", reason)
            store.upsert_source(row.name, "video", status=r.status, error=r.error)
            emit(FetchEvent("done", row.name, result=r))
    if not_started:
        emit(FetchEvent("message", message=f"a worker process died; going on with {len(not_started)} video(s) in new workers"))
    return not_started


# -- one video -----------------------------------------------------------------------------------------


def fetch_video(
    store: Store, row: ManifestRow, cfg: FetchConfig, model: ResolvedModel, emit: Emit,
    should_stop: Callable[[], bool] = lambda: False, *, threads: int | None = None,
) -> VideoResult:
    """Download, sample, detect, track and store one video. Its outcome is recorded as the source's status."""
    t0 = time.monotonic()
    name = row.name
    res = VideoResult(name, row.url, "running")
    source_id = store.upsert_source(
        name, "video", url=row.url, title=row.title, license=row.license, status="running", error=None,
        meta={"manifest": row.meta()},
    )
    downloads = store.root / DOWNLOADS_DIR
    emit(FetchEvent("start", name, stage="download"))
    last_emit = [0.0]

    def progress(stage: str, done: float, total: float | None, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last_emit[0] > 0.1:
            last_emit[0] = now
            emit(FetchEvent("progress", name, stage=stage, done=done, total=total))

    def finish(status: str, error: str | None) -> VideoResult:
        res.status, res.error = status, error
        res.wall_s = time.monotonic() - t0
        store.set_source_status(source_id, status, error)
        if status != "interrupted" and not (cfg.keep_videos and status in DONE):
            _remove_downloads(downloads, row.url)
        return res

    try:
        try:
            got = download_video(row.url, downloads, cfg.download, lambda d, t: progress("download", d, t), should_stop)
        except DownloadFailed as e:
            return finish(e.status, str(e))
        except DownloadStopped:
            return finish("interrupted", "stopped by the user during the download; rerun to finish")
        try:
            info = probe_video(got.path, cfg.download.downscale)
        except NotAVideo as e:
            return finish("not_a_video", f"not a video: the URL served {describe_file(got.path)}; {e}")
        if info.duration_s is None and got.info.get("duration"):  # some containers do not tell OpenCV
            info = replace(info, duration_s=float(got.info["duration"]))
        meta: dict[str, Any] = {"manifest": row.meta(), "download": got.info, "settings": _settings(cfg, model)}
        if info.downscaled:
            meta["downscale"] = {"from": [info.native_width, info.native_height], "to": [info.width, info.height]}
        store.upsert_source(
            name, "video", title=row.title or got.title, license=row.license or got.license,
            width=info.width, height=info.height, fps=info.fps or None, duration_s=info.duration_s, meta=meta,
        )
        if info.native_height >= 720 and not cfg.download.downscale:
            return finish(
                "too_high_res",
                f"{info.native_width}x{info.native_height} is 720p or more (lrfp keeps videos below 720p); "
                "rerun with --retry-failed --downscale to resize its frames to 480 lines",
            )
        if row.start_s is not None and info.duration_s is not None and row.start_s >= info.duration_s:
            return finish("bad_range", f"start {row.start_s:g} s is past the end of the video ({info.duration_s:.1f} s)")
        stopped = detect_and_store(store, source_id, row, info, got.path, cfg, model, res, progress, should_stop, threads)
        if stopped:
            return finish("interrupted", "stopped by the user; rerun to finish (crops stored so far are kept)")
        if res.frames_sampled == 0:
            return finish("bad_range", "no frame decodes in the requested range")
        if res.crops_kept == 0:
            return finish(
                "no_faces",
                f"no face of at least {cfg.min_face} px with score >= {cfg.min_score:g} "
                f"in {res.frames_sampled} sampled frames",
            )
        return finish("ok", None)
    except KeyboardInterrupt:
        finish("interrupted", "interrupted by the user; rerun to finish (crops stored so far are kept)")
        raise
    except Exception as e:  # a failure of one video is data: record it and go on with the next
        log.exception("fetching %s failed", row.url)
        return finish("error", f"{type(e).__name__}: {e}")


def _settings(cfg: FetchConfig, model: ResolvedModel) -> dict[str, Any]:
    return {
        "every_s": cfg.every_s, "min_face": cfg.min_face, "min_score": cfg.min_score, "margin": cfg.margin,
        "per_track": cfg.per_track, "model": model.model.filename, "model_sha256": model.model.sha256,
    }


def _remove_downloads(downloads: Path, url: str) -> None:
    if downloads.is_dir():
        for p in downloads.glob(download_key(url) + ".*"):
            with contextlib.suppress(OSError):
                p.unlink()


def detect_and_store(
    store: Store, source_id: int, row: ManifestRow, info: VideoInfo, path: Path, cfg: FetchConfig,
    model: ResolvedModel, res: VideoResult, progress: Callable[..., None], should_stop: Callable[[], bool],
    threads: int | None,
) -> bool:
    """The frame loop. Returns True if it was stopped before the end.

    Finished tracks go to a writer thread (with its own store connection) that encodes and stores their
    crops in batches (one filesystem sync and one commit per batch), overlapping decoding and detection.
    """
    import cv2

    from lrfp.fetch.crop import cut_crop, square_box
    from lrfp.fetch.detect import reused_detector
    from lrfp.fetch.track import Candidate, IoUTracker

    start = row.start_s or 0.0
    end = row.end_s if row.end_s is not None else info.duration_s
    span = (end - start) if end is not None else None
    tracker = IoUTracker(cfg.per_track)
    context: dict[int, Any] = {}  # frame index -> small frame image, while a pending candidate needs it
    last_t = start
    writer = _CropWriter(store.root, source_id, row.name, info, cfg, model, res)
    try:
        with reused_detector(model.path, cfg.min_score) as detector:
            frames = sample_frames(path, info, cfg.every_s, row.start_s, row.end_s, threads=threads, should_stop=should_stop)
            try:
                for sample, frame in enumerate(frames):
                    res.frames_sampled += 1
                    last_t = frame.time_s
                    rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
                    cands = []
                    for det in detector.detect(rgb):
                        if min(det.box[2], det.box[3]) < cfg.min_face:
                            continue
                        square = square_box(det.box, info.width, info.height, cfg.margin)
                        cands.append(Candidate(frame.time_s, frame.index, det.box, det.score, (square, cut_crop(frame.image, square))))
                    res.faces_found += len(cands)
                    if cands:
                        context[frame.index] = _small(frame.image)
                    for done in tracker.update(sample, cands):
                        writer.put(done, context)
                    if len(context) > 8:
                        keep = {c.frame_index for c in tracker.pending()}
                        for idx in [i for i in context if i not in keep]:
                            del context[idx]
                    progress("frames", frame.time_s - start, span)
            finally:
                frames.close()
        stopped = should_stop()
        if not stopped:  # after a stop, open tracks are redone by the rerun (same crops, no extra ones)
            for done in tracker.finish():
                writer.put(done, context)
    finally:
        writer.close()
    res.video_s = max(0.0, last_t - start + (cfg.every_s if res.frames_sampled else 0.0))
    if span is not None:
        res.video_s = min(res.video_s, span)
    progress("frames", span or res.video_s, span or res.video_s, force=True)
    return stopped


def _small(image: Any) -> Any:
    """The frame shrunk by a whole factor to at most CONTEXT_WIDTH wide, for the context JPEG.

    Area averaging over k x k blocks is OpenCV's fast path (half the time of a bilinear resize to an
    arbitrary width, measured on an 854x480 frame) and looks better; the labeler scales the face box to it.
    """
    import cv2

    h, w = image.shape[:2]
    k = -(-w // CONTEXT_WIDTH)  # ceil
    if k <= 1:
        return image
    return cv2.resize(image, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)


class _CropWriter:
    """Stores the kept crops of finished tracks, with their frame's context JPEG, from a thread of its own."""

    def __init__(self, data_dir: Path, source_id: int, name: str, info: VideoInfo, cfg: FetchConfig,
                 model: ResolvedModel, res: VideoResult) -> None:
        import queue

        self.data_dir, self.source_id, self.name, self.info, self.cfg, self.model, self.res = (
            data_dir, source_id, name, info, cfg, model, res)
        self.frames_stored: set[int] = set()  # frame indexes whose row (and context JPEG) is stored
        self.queue: queue.Queue = queue.Queue(maxsize=256)  # bounded: the frame loop waits if storing lags
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"lrfp-writer-{name}", daemon=True)
        self.thread.start()

    def put(self, track: Any, context: dict[int, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.res.tracks += 1
        images = {c.frame_index: context.get(c.frame_index) for c in track.kept}
        self.queue.put((track, images))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        import queue

        try:
            with open_store(self.data_dir) as store:
                closing = False
                while not closing:
                    # Wait for one track, then gather more for up to WRITER_BATCH_S (or until the end): each
                    # batch costs one filesystem sync and one commit. A kill loses at most the open batch,
                    # which the rerun redoes.
                    batch = [self.queue.get()]
                    deadline = time.monotonic() + WRITER_BATCH_S
                    with contextlib.suppress(queue.Empty):
                        while batch[-1] is not None and len(batch) < WRITER_BATCH_TRACKS:
                            batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                    if batch[-1] is None:
                        closing = True
                        batch.pop()
                    if batch and self.error is None:
                        self._write(store, batch)
        except BaseException as e:  # handed to the frame loop by put()/close()
            self.error = e
            while self.queue.get() is not None:  # let put() and close() return
                pass

    def _write(self, store: Store, batch: list[tuple[Any, dict[int, Any]]]) -> None:
        """Encode and store the kept crops of a batch of finished tracks, with one sync and one commit."""
        from lrfp.fetch.crop import encode_context_jpeg, encode_png
        from lrfp.store import NewCrop, NewFrame

        frames: dict[int, NewFrame] = {}
        crops: list[NewCrop] = []
        for track, images in batch:
            for c in track.kept:
                square, pixels = c.payload
                if c.frame_index not in self.frames_stored and c.frame_index not in frames:
                    small = images.get(c.frame_index)
                    jpeg = encode_context_jpeg(small, CONTEXT_WIDTH) if small is not None else None
                    frames[c.frame_index] = NewFrame(c.frame_index, c.time_s, self.info.width, self.info.height, jpeg)
                meta: dict[str, Any] = {
                    "crop_box": list(square), "margin": self.cfg.margin, "frame_size": [self.info.width, self.info.height],
                    "track_seen": track.seen, "track_span_s": [track.first_s, track.last_s],
                }
                if self.info.downscaled:
                    meta["downscaled_from"] = [self.info.native_width, self.info.native_height]
                origin = CropOrigin(
                    frame_index=c.frame_index, time_s=c.time_s, box=tuple(c.box), score=round(c.score, 4),
                    detector=f"mediapipe-blazeface-{self.model.model.name}", model_sha256=self.model.model.sha256,
                    track_id=f"{self.name}:t{track.number}", meta=meta,
                )
                crops.append(NewCrop(encode_png(pixels), square[2], square[3], origin))
        results = store.add_frames_and_crops(self.source_id, list(frames.values()), crops)
        self.frames_stored.update(frames)
        self.res.crops_kept += len(results)
        self.res.crops_new += sum(created for _, created in results)
