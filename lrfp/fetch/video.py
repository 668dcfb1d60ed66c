"""One video: download -> probe -> frame loop (sample, detect, track, hand crops to the writer) -> final status.

`fetch_video` does a manifest row from its URL; `process_video_file` does a file already on disk (the same
code after the download; `perf/fetch_speed.py` measures it). Either records the outcome as the source's status.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from lrfp.errors import DataDirError, LrfpError, disk_full, exception_chain
from lrfp.fetch.config import DONE, DOWNSCALE_LINES, MAX_LINES, FetchConfig, VideoStatus, too_high_res
from lrfp.fetch.download import DownloadFailed, DownloadStopped, describe_file, download_key, download_video
from lrfp.fetch.detect import FrameTooSmall, ResolvedDetector
from lrfp.fetch.frames import DecodeReport, NotAVideo, VideoInfo, probe_video, sample_frames
from lrfp.fetch.results import Emit, FetchEvent, VideoResult
from lrfp.fetch.writer import CONTEXT_WIDTH, CropWriter
from lrfp.manifest import ManifestRow
from lrfp.store import Store

log = logging.getLogger(__name__)

DOWNLOADS_DIR = "downloads"
TRUNCATED_SLACK_S = 1.0
TRUNCATED_SLACK_FRACTION = 0.10
"""A video is `truncated` when it decodes to more than max(TRUNCATED_SLACK_S, TRUNCATED_SLACK_FRACTION x declared)
short of the length its container or yt-dlp declared (slack for rounded or estimated durations; the case
seen: a server that closed early with no Content-Length gave 2.5 of 3.84 s)."""

BY_USER = "stopped by the user"
"""How the error of a video stopped by Ctrl-C or SIGTERM begins. The workers of a pool are stopped the same way when
another video ended the run (a full disk): pipeline.end_running then says so instead."""

Progress = Callable[..., None]  # (stage, done, total, force=False)


def _never() -> bool:
    return False


@dataclass
class VideoJob:
    """What the frame loop of one video needs. `res` is filled in as it goes."""

    store: Store
    source_id: int
    row: ManifestRow
    info: VideoInfo
    path: Path
    cfg: FetchConfig
    model: ResolvedDetector
    res: VideoResult
    progress: Progress = lambda *a, **k: None
    should_stop: Callable[[], bool] = _never
    threads: int | None = None  # decoder threads (None: OpenCV's default)
    decoded: DecodeReport = field(default_factory=DecodeReport)  # how far the file really decoded
    crop_ids: set[int] = field(default_factory=set)  # the stored crops this run produced (new or identical)


class _Outcome:
    """Records a video's final status (and removes its download unless it is kept)."""

    def __init__(self, store: Store, source_id: int, row: ManifestRow, cfg: FetchConfig, res: VideoResult,
                 remove_download: bool) -> None:
        self.store, self.source_id, self.row, self.cfg, self.res = store, source_id, row, cfg, res
        self.remove_download = remove_download
        self.t0 = time.monotonic()

    def __call__(self, status: VideoStatus, error: str | None) -> VideoResult:
        res = self.res
        res.status, res.error = status, error
        res.wall_s = time.monotonic() - self.t0
        self.store.set_source_status(self.source_id, status, error)
        if status != VideoStatus.interrupted:  # an interrupted redo is finished by the rerun, which still has it
            if (kept := end_redo(self.store, self.row.name, status)) is not None:
                res.kept_earlier = kept
                res.error = (f"{error}; the redo failed, so the earlier run's status ({kept}), settings and crops "
                             "are kept")
        if self.remove_download and status != VideoStatus.interrupted and not (self.cfg.keep_videos and status in DONE):
            remove_downloads(self.store.root / DOWNLOADS_DIR, self.row.url)
        return res


REDO_KEY = "fetch.redo_of:"
"""Store setting REDO_KEY + source name: what a video done earlier was (its sources row and crop ids) while a
--redo of it runs, so that a redo that fails gives it back (docs/fetch-faults.md, "A redo that fails")."""


def begin_redo(store: Store, name: str) -> None:
    """Remember source `name` as it is (done earlier, about to be redone with other settings)."""
    import json

    src = store.source(name)
    if store.get_setting(REDO_KEY + name) is not None:
        return  # an earlier redo of it was interrupted: what it gives back is still the run before that one
    crops = [crop_id for crop_id, _ in store.crop_paths(source_id=int(src["id"]))]
    earlier = {k: src[k] for k in ("status", "error", "title", "license", "width", "height", "fps", "duration_s", "meta")}
    store.set_setting(REDO_KEY + name, json.dumps({"source": earlier, "crops": crops}))


def end_redo(store: Store, name: str, status: str) -> str | None:
    """A redo of `name` ended with `status`. If it failed (FAILED), the source gets back its earlier status,
    error, size and meta (settings), and the crops this redo added go (unless labeled or in a split); returns
    the earlier status then. Else (done, or no redo running) returns None."""
    import json

    from lrfp.fetch.config import FAILED

    saved = store.get_setting(REDO_KEY + name)
    if saved is None:
        return None
    earlier = json.loads(saved)
    if status in FAILED:
        src = store.source(name)
        store.prune_source_crops(int(src["id"]), set(earlier["crops"]))
        fields = {k: v for k, v in earlier["source"].items() if not (k in ("title", "license") and src[k] is not None)}
        store.upsert_source(name, "video", **fields)  # a title or license the redo's row gave stays
    store.delete_setting(REDO_KEY + name)
    return str(earlier["source"]["status"]) if status in FAILED else None


CARRIED_META = ("url_changes",)
"""Keys of a source's meta that outlive a rerun of the video (its history, not what one run made)."""


def _carried(store: Store, name: str) -> dict[str, Any]:
    """The CARRIED_META entries of source `name`'s stored meta."""
    import json

    src = store.find_source(name)
    meta = json.loads(src["meta"] or "{}") if src is not None else {}
    return {k: meta[k] for k in CARRIED_META if k in meta}


def _start_fields(row: ManifestRow, carried: dict[str, Any]) -> dict[str, Any]:
    """The source fields a video's run starts with. A title or license the row leaves empty is not written
    (what the store has, perhaps from yt-dlp or an earlier manifest, stays)."""
    fields: dict[str, Any] = {"url": row.url, "status": VideoStatus.running, "error": None,
                              "meta": {**carried, "manifest": row.meta()}}
    fields.update({k: getattr(row, k) for k in ("title", "license") if getattr(row, k) is not None})
    return fields


def _progress_to(emit: Emit, name: str) -> Progress:
    last_emit = [0.0]

    def progress(stage: str, done: float, total: float | None, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last_emit[0] > 0.1:
            last_emit[0] = now
            emit(FetchEvent("progress", name, stage=stage, done=done, total=total))

    return progress


def fetch_video(
    store: Store, row: ManifestRow, cfg: FetchConfig, model: ResolvedDetector, emit: Emit,
    should_stop: Callable[[], bool] = _never, *, threads: int | None = None,
) -> VideoResult:
    """Download, sample, detect, track and store one video. Its outcome is recorded as the source's status."""
    res = VideoResult(row.name, row.url, VideoStatus.running)
    carried = _carried(store, row.name)
    source_id = store.upsert_source(row.name, "video", **_start_fields(row, carried))
    finish = _Outcome(store, source_id, row, cfg, res, remove_download=True)
    progress = _progress_to(emit, row.name)
    emit(FetchEvent("start", row.name, stage="download"))
    try:
        try:
            got = download_video(row.url, store.root / DOWNLOADS_DIR, cfg.download,
                                 lambda d, t: progress("download", d, t), should_stop)
        except DownloadFailed as e:
            return finish(e.status, str(e))
        except DownloadStopped:
            return finish(VideoStatus.interrupted, f"{BY_USER} during the download; rerun to finish")
        return _process(store, source_id, row, got.path, cfg, model, res, finish, progress, should_stop, threads,
                        got.info, got.title, got.license, carried)
    except KeyboardInterrupt:
        # If even this status cannot be stored (a full disk, a lock), the row stays `running`: the caller
        # (pipeline.fetch_manifest) records it once the run has stopped, and a rerun redoes a `running` row anyway.
        with contextlib.suppress(Exception):
            finish(VideoStatus.interrupted, "interrupted by the user; rerun to finish (crops stored so far are kept)")
        raise
    except Exception as e:
        run_error = run_level_error(e, store.root)
        if run_error is None:  # a failure of one video is data: record it and go on with the next
            log.exception("fetching %s failed", row.url)
            try:
                return finish(VideoStatus.error, f"{type(e).__name__}: {e}")
            except Exception as e2:  # the status itself cannot be stored: the store is unusable, end the run
                if (run_error := run_level_error(e2, store.root)) is None:
                    raise
                e = e2
        # The data folder is full (or unusable): the next videos would fail the same way. Free the download
        # first, so that the status can still be written, then end the run. The video is `interrupted`, not
        # `error`: it is not the video's fault, and the plain rerun the message asks for redoes it (a failed
        # status is skipped without --retry-failed). When even that cannot be written (another worker took the
        # last bytes), the row stays `running` until pipeline.end_running records it after every worker stopped.
        with contextlib.suppress(Exception):
            remove_downloads(store.root / DOWNLOADS_DIR, row.url)
            finish(VideoStatus.interrupted, str(run_error))
        raise run_error from e


def process_video_file(
    store: Store, row: ManifestRow, path: Path, cfg: FetchConfig, model: ResolvedDetector,
    emit: Emit | None = None, should_stop: Callable[[], bool] = _never, *, threads: int | None = None,
) -> VideoResult:
    """Probe, sample, detect, track and store one video file already on disk, as source `row.name`.

    The same code `fetch_video` runs after its download; the file is never removed. Returns the video's
    result (status as in the store: ok, no_faces, duplicate, not_a_video, too_high_res, bad_range, interrupted, error).
    """
    cfg.check()
    res = VideoResult(row.name, row.url, VideoStatus.running)
    carried = _carried(store, row.name)
    source_id = store.upsert_source(row.name, "video", **_start_fields(row, carried))
    finish = _Outcome(store, source_id, row, cfg, res, remove_download=False)
    progress = _progress_to(emit or (lambda e: None), row.name)
    return _process(store, source_id, row, path, cfg, model, res, finish, progress, should_stop, threads, {}, None, None,
                    carried)


def _process(store: Store, source_id: int, row: ManifestRow, path: Path, cfg: FetchConfig, model: ResolvedDetector,
             res: VideoResult, finish: _Outcome, progress: Progress, should_stop: Callable[[], bool],
             threads: int | None, download_info: dict[str, Any], title: str | None, license: str | None,
             carried: dict[str, Any]) -> VideoResult:
    try:
        info = probe_video(path, cfg.download.downscale)
    except NotAVideo as e:
        return finish(VideoStatus.not_a_video, f"not a video: the URL served {describe_file(path)}; {e}")
    container_s = info.duration_s
    if info.duration_s is None and download_info.get("duration"):  # some containers do not tell OpenCV
        info = replace(info, duration_s=float(download_info["duration"]))
    meta: dict[str, Any] = {**carried, "manifest": row.meta(), "download": download_info,
                            "settings": settings(cfg, model, info), "file_sha256": file_sha256(path)}
    if info.downscaled:
        meta["downscale"] = {"from": [info.native_width, info.native_height], "to": [info.width, info.height]}
    described = {k: v for k, v in (("title", row.title or title), ("license", row.license or license)) if v is not None}
    store.upsert_source(
        row.name, "video", **described,
        width=info.width, height=info.height, fps=info.fps or None, duration_s=info.duration_s, meta=meta,
    )
    if too_high_res(info.native_width, info.native_height) and not cfg.download.downscale:
        again = "--redo" if store.get_setting(REDO_KEY + row.name) is not None else "--retry-failed"  # end_redo keeps it ok
        return finish(
            VideoStatus.too_high_res,
            f"{info.native_width}x{info.native_height} is {MAX_LINES}p or more (lrfp keeps videos below {MAX_LINES}p); "
            f"rerun with {again} --downscale to resize its frames to {DOWNSCALE_LINES} lines",
        )
    # A source that owns crops (an earlier run of it was cut short before the other id was fetched) is processed
    # instead: a `duplicate` owns no crop, and only a run to the end removes crops of other settings (bug: such a
    # source was `duplicate` with crops that survived every --redo).
    if store.count_crops(source_id) == 0 and (other := same_file(store, row, meta["file_sha256"])) is not None:
        return finish(VideoStatus.duplicate, f"same footage as source {other}: the file is byte-identical to "
                                             f"{other}'s (sha256 {meta['file_sha256'][:12]}), so its crops are "
                                             f"{other}'s (made with {other}'s settings)")
    if row.start_s is not None and info.duration_s is not None and row.start_s >= info.duration_s:
        return finish(VideoStatus.bad_range, f"start {row.start_s:g} s is past the end of the video ({info.duration_s:.1f} s)")
    job = VideoJob(store, source_id, row, info, path, cfg, model, res, progress, should_stop, threads)
    try:
        stopped = run_frames(job)
    except FrameTooSmall as e:
        return finish(VideoStatus.error, str(e))
    finally:
        meta["dropped"] = res.dropped()  # what each filter threw away, for `lrfp stats`
        store.upsert_source(row.name, "video", meta=meta)
    if stopped:
        return finish(VideoStatus.interrupted, f"{BY_USER}; rerun to finish (crops stored so far are kept)")
    short = truncation(job.decoded, info.fps, row.end_s, {"its container": container_s, "yt-dlp": download_info.get("duration")})
    if short is not None:
        return finish(VideoStatus.truncated, short)
    if res.frames_sampled == 0:
        return finish(VideoStatus.bad_range, "no frame decodes in the requested range")
    # The whole video was done: crops of an earlier run that this one did not produce (other settings) go,
    # unless a person labeled them or a split holds them.
    res.crops_removed, res.labeled_kept = store.prune_source_crops(source_id, job.crop_ids)
    owners = store.crop_owners(job.crop_ids)  # source name -> how many of this run's crops it owns
    res.crops_others = sum(n for name, n in owners.items() if name != row.name)
    if job.crop_ids and row.name not in owners and store.count_crops(source_id) == 0:  # labeled ones kept: not a duplicate
        others = ", ".join(sorted(owners))
        return finish(VideoStatus.duplicate, f"same footage as source {others}: its {len(job.crop_ids)} crops are "
                                             f"all already stored as {others}'s")
    if res.crops_kept == 0:
        return finish(
            VideoStatus.no_faces,
            f"no face of at least {cfg.min_face} px with score >= {cfg.min_score:g} "
            f"in {res.frames_sampled} sampled frames",
        )
    return finish(VideoStatus.ok, None)


def file_sha256(path: Path) -> str:
    """The sha256 (hex) of a video file's bytes, recorded in its source's meta `file_sha256` (same_file)."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def same_file(store: Store, row: ManifestRow, sha256: str) -> str | None:
    """The name of another video source whose file had these bytes (meta `file_sha256`), cut to the same
    `start`/`end` as `row` (an empty `start` is 0), and whose crops stand for them (status ok or no_faces); else None. The same footage
    under two ids (a re-upload, a second link to one file) then has one owner of its crops, the source fetched
    first: crops are content-addressed (one row per PNG's sha256), so the second would otherwise claim crops that
    are all the first's. Another stretch of the file is processed (its crops are counted by owner instead)."""
    import json

    found = store.query(
        "SELECT name, meta FROM sources WHERE kind = 'video' AND name != ? AND status IN (?, ?) "
        "AND json_extract(meta, '$.file_sha256') = ? ORDER BY id",
        (row.name, VideoStatus.ok, VideoStatus.no_faces, sha256))
    for other in found:
        made_with = json.loads(other["meta"]).get("manifest") or {}
        if (made_with.get("start_s") or 0.0, made_with.get("end_s")) == (row.start_s or 0.0, row.end_s):  # empty start: 0
            return str(other["name"])
    return None


def truncation(decoded: DecodeReport, fps: float, end_s: float | None, declared: dict[str, float | None]) -> str | None:
    """The `truncated` message when the file ran out of frames well before the length declared by any of
    `declared` (who -> seconds) or before `end_s`, whichever is first; else None."""
    if not decoded.ended or decoded.last_time_s is None:
        return None
    decoded_s = decoded.last_time_s + (1.0 / fps if fps > 0 else 0.0)
    for who, length in declared.items():
        if not length:
            continue
        target = min(length, end_s) if end_s is not None else length
        if decoded_s < target - max(TRUNCATED_SLACK_S, TRUNCATED_SLACK_FRACTION * target):
            return (f"truncated: the file decodes to {decoded_s:.2f} s but {who} declares {length:.2f} s "
                    "(the download was probably cut short); rerun with --retry-failed to fetch it again")
    return None


def store_unwritable(e: BaseException) -> str | None:
    """Whether `e` (or an exception it wraps) says the data folder can no longer be written, other than a full
    disk: 'read-only' (EROFS, or SQLite's "attempt to write a readonly database", e.g. a filesystem remounted
    read-only after an I/O error), 'locked' (SQLite's "database is locked": another process held the store's
    write lock past the busy timeout, store.BUSY_TIMEOUT_MS), else None."""
    import errno
    import sqlite3

    for x in exception_chain(e):
        if (isinstance(x, OSError) and x.errno == errno.EROFS) or (
                isinstance(x, sqlite3.OperationalError) and "readonly database" in str(x)):
            return "read-only"
        if isinstance(x, sqlite3.OperationalError) and "database is locked" in str(x):
            return "locked"
    return None


def run_level_error(e: BaseException, root: Path) -> LrfpError | None:
    """The error that must end the whole run (not just this video), or None: an LrfpError as it is; a full
    disk, a data folder that became read-only, or a store locked past the busy timeout as a DataDirError
    naming the data folder (every next video, and this one's status, would fail the same way)."""
    from lrfp.store import BUSY_TIMEOUT_MS

    if isinstance(e, LrfpError):
        return e
    if disk_full(e):
        return DataDirError(f"the data folder {root} is full: No space left on device; free some space "
                            "(or use another data folder with -d) and rerun the same command to finish")
    why = store_unwritable(e)
    if why == "read-only":
        return DataDirError(f"the data folder {root} became read-only ({e}); make it writable again (remount it "
                            "read-write) and rerun the same command to finish")
    if why == "locked":
        return DataDirError(f"the store in {root} stayed locked by another process for {BUSY_TIMEOUT_MS / 1000:g} s "
                            "(database is locked); let the other lrfp command finish (or stop it) and rerun the same "
                            "command to finish")
    return None


def settings(cfg: FetchConfig, model: ResolvedDetector, info: VideoInfo | None = None) -> dict[str, Any]:
    """The settings a video's crops depend on, stored in its source's meta and compared by the next run's
    plan (config.changed_settings); with `info`, also the tile grid used on its frames (not compared)."""
    size = (info.width, info.height) if info is not None else (None, None)
    return {
        "every_s": cfg.every_s, "min_face": cfg.min_face, "min_score": cfg.min_score, "margin": cfg.margin,
        "per_track": cfg.per_track, "downscale": cfg.download.downscale, **model.provenance(*size),
    }


def remove_downloads(downloads: Path, url: str) -> None:
    """Remove the files (and partial files) of `url`'s download under `downloads`."""
    if downloads.is_dir():
        for p in downloads.glob(download_key(url) + ".*"):
            with contextlib.suppress(OSError):
                p.unlink()


def run_frames(job: VideoJob) -> bool:
    """The frame loop. Returns True if it was stopped before the end. Raises FrameTooSmall for frames with a
    side under 16 px (the video then fails with that message).

    Finished tracks go to a CropWriter thread (with its own store connection) that encodes and stores their
    crops in batches, overlapping decoding and detection.
    """
    from lrfp.fetch.crop import cut_crop, square_box
    from lrfp.fetch.detect import check_frame_size, reused_detector
    from lrfp.fetch.track import Candidate, IoUTracker, face_appearance

    row, info, cfg, res = job.row, job.info, job.cfg, job.res
    start = row.start_s or 0.0
    end = row.end_s if row.end_s is not None else info.duration_s
    span = (end - start) if end is not None else None
    tracker = IoUTracker(cfg.per_track)
    context: dict[int, Any] = {}  # frame index -> small frame image, while a pending candidate needs it
    last_t = start
    check_frame_size(info.width, info.height)  # FrameTooSmall: the video fails with that message
    writer = CropWriter(job.store.root, job.source_id, row.name, info, cfg, job.model, res)
    try:
        with reused_detector(job.model.settings) as detector:
            frames = sample_frames(job.path, info, cfg.every_s, row.start_s, row.end_s, threads=job.threads,
                                   should_stop=job.should_stop, report=job.decoded)
            try:
                for sample, frame in enumerate(frames):
                    res.frames_sampled += 1
                    last_t = frame.time_s
                    cands = []
                    for det in detector.detect(frame.image):
                        if det.score < cfg.min_score:
                            res.dropped_min_score += 1
                            continue
                        if min(det.box[2], det.box[3]) < cfg.min_face:
                            res.dropped_min_face += 1
                            continue
                        square = square_box(det.box, info.width, info.height, cfg.margin)
                        x, y, w, h = det.box
                        look = face_appearance(frame.image[y:y + h, x:x + w])
                        cands.append(Candidate(frame.time_s, frame.index, det.box, det.score,
                                               (square, cut_crop(frame.image, square)), look))
                    res.faces_found += len(cands)
                    if cands:
                        context[frame.index] = _small(frame.image)
                    for done in tracker.update(sample, cands):
                        writer.put(done, context)
                    if len(context) > 8:
                        keep = {c.frame_index for c in tracker.pending()}
                        for idx in [i for i in context if i not in keep]:
                            del context[idx]
                    job.progress("frames", frame.time_s - start, span)
            finally:
                frames.close()
        stopped = job.should_stop()
        if not stopped:  # after a stop, open tracks are redone by the rerun (same crops, no extra ones)
            for done in tracker.finish():
                writer.put(done, context)
    finally:
        writer.close()
        job.crop_ids.update(writer.crop_ids)
    res.video_s = max(0.0, last_t - start + (cfg.every_s if res.frames_sampled else 0.0))
    if span is not None:
        res.video_s = min(res.video_s, span)
    job.progress("frames", span or res.video_s, span or res.video_s, force=True)
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
