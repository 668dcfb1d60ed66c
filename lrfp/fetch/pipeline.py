"""`lrfp fetch` over a manifest: plan (what to do, what to skip), run the videos here or in worker processes,
and turn Ctrl-C into a clean stop.

Resumable (videos whose status is final are skipped; a video cut short is redone and its crops,
identical bytes, are not stored twice), parallel (`workers` processes, each with its own Store), and
stoppable (Ctrl-C or SIGTERM: the current frame finishes, the video is marked `interrupted`, what is stored stays).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from lrfp.errors import InputError, LrfpError
from lrfp.fetch.config import DONE, FAILED, ROW_SETTINGS, FetchConfig, VideoStatus, changed_settings
from lrfp.fetch.detect import close_idle_detectors
from lrfp.fetch.detect import resolve_detector
from lrfp.fetch.detectors.tiles import parse_tiles
from lrfp.fetch.results import Emit, FetchEvent, FetchResult, VideoResult
from lrfp.fetch.video import DOWNLOADS_DIR, begin_redo, remove_downloads, fetch_video, run_level_error, settings
from lrfp import run_lock
from lrfp.manifest import ManifestRow, read_manifest
from lrfp.store import Store, now, open_store


def fetch_manifest(manifest: Path, data_dir: Path, cfg: FetchConfig, on_event: Emit | None = None) -> FetchResult:
    """Fetch every row of the manifest into the store at data_dir. The config and manifest are checked first
    (UsageError, InputError); a video's failure is its status, not an exception."""
    t0 = time.monotonic()
    emit = on_event or (lambda e: None)
    cfg.check()
    rows = read_manifest(manifest)
    # Before the store is touched: a missing or corrupt weights file is the user's to fix (exit 2); its settings
    # are compared with what each stored video was made with.
    model = resolve_detector(cfg.detector, parse_tiles(cfg.tiles), cfg.min_score, cfg.models_dir,
                             on_pull=lambda m: emit(FetchEvent("message", message=m)))
    with contextlib.ExitStack() as held:
        try:
            with open_store(data_dir) as store:
                # Held until the run ends, however it ends: a second fetch on this store is refused, and a video
                # left `running` while no fetch holds it was left by a killed run (run_lock, `lrfp stats`).
                describe = held.enter_context(run_lock.hold(store.root, run_lock.FETCH, doing=f"manifest {manifest}",
                                                            hint="to go faster, give one run more --workers"))
                todo, skipped, moved = plan(store, rows, cfg, manifest, settings(cfg, model))
                # `lrfp stats`: a video `running` that this run does not name was left by a killed run
                with contextlib.suppress(OSError):
                    describe(sources=[row.name for row in todo])
        except Exception as e:
            if (run_error := run_level_error(e, Path(data_dir).expanduser().resolve())) is not None and run_error is not e:
                raise run_error from e  # the disk is full before any video began
            raise
        for r in skipped:
            emit(FetchEvent("done", r.name, result=r))
        for name, old_url in moved.items():
            emit(FetchEvent("message", message=f"{name}: takes the manifest's new URL (no crop came from its stored URL "
                                               f"{old_url}; the change is recorded in its meta url_changes)"))
        for row in todo:
            emit(FetchEvent("queued", row.name))
        results: dict[str, VideoResult] = {r.name: r for r in skipped}
        stop = threading.Event()
        try:
            with first_ctrl_c_sets(stop, emit):
                if cfg.workers == 1 or len(todo) <= 1:
                    try:
                        interrupted = _run_here(data_dir, todo, cfg, model, emit, stop, results)
                    finally:
                        close_idle_detectors()  # the videos shared one detector (workers close theirs when they exit)
                else:
                    from lrfp.fetch.pool import run_pool

                    interrupted = run_pool(data_dir, todo, cfg, model, emit, stop, results)
        except BaseException as e:
            # A store that can no longer be written outside a video (the pool recording a dead worker's video, a
            # worker opening the store) is the same run-level error as inside one (video.run_level_error).
            run_error = run_level_error(e, Path(data_dir).expanduser().resolve()) if isinstance(e, Exception) else None
            release_unbegun_redos(data_dir, [row.name for row in todo if _not_begun(results.get(row.name))])
            left = end_running(data_dir, [row.name for row in todo if row.name not in results], run_error or e)
            if left and isinstance(run_error, LrfpError):
                run_error.args = (f"{run_error}\n{left_running_note(left)}",)  # the CLI prints it after `Error: `
            if run_error is not None and run_error is not e:
                raise run_error from e
            raise
        if interrupted and not any(_not_begun(results.get(r.name)) or results[r.name].status == VideoStatus.interrupted
                                   for r in todo):
            interrupted = False  # the Ctrl-C or SIGTERM came after the last video had ended: nothing was cut short
        if interrupted:
            release_unbegun_redos(data_dir, [row.name for row in todo if _not_begun(results.get(row.name))])
        ordered = [results.get(r.name) or VideoResult(r.name, r.url, VideoStatus.pending, skipped=True) for r in rows]
        for r in ordered:
            r.url_was = moved.get(r.name)
        return FetchResult(ordered, time.monotonic() - t0, interrupted, model)


CUT_SHORT = ("the run ended before this video's status could be stored ({why}); rerun the same command to finish "
             "(crops stored so far are kept)")
"""The error of a video left `running` by a run that ended on an exception (end_running)."""
STOPPED_BY_RUN = ("stopped because the run ended ({why}); rerun the same command to finish "
                  "(crops stored so far are kept)")
"""The error of a video whose worker was stopped because another video ended the run (end_running)."""


def end_running(data_dir: Path, names: list[str], e: BaseException) -> list[str]:
    """After a run ended on `e` (every worker stopped): the videos of `names` (those without a result) still
    `running` in the store -- their final status could not be written (the disk was full when another worker took
    the last bytes, a lock, a second Ctrl-C) -- become `interrupted`, which a plain rerun redoes (a crop already
    stored is not stored twice). One write, now that the workers' downloads are removed. Unless `e` is a Ctrl-C or
    SIGTERM, those a pool's worker recorded as stopped by the user (video.BY_USER) say what stopped them instead.
    Returns the names still `running` because even that failed (a rerun redoes a `running` row too, as after a
    kill -9 or a power cut)."""
    from lrfp.fetch.video import BY_USER
    from lrfp.interrupts import Terminated

    if not names:
        return []
    if isinstance(e, KeyboardInterrupt):
        why = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
    else:
        why = str(e) if isinstance(e, LrfpError) else f"{type(e).__name__}: {e}"
    try:
        with open_store(data_dir) as store:
            store.replace_status(names, VideoStatus.running, VideoStatus.interrupted, CUT_SHORT.format(why=why))
            if not isinstance(e, KeyboardInterrupt):
                store.replace_status(names, VideoStatus.interrupted, VideoStatus.interrupted,
                                     STOPPED_BY_RUN.format(why=why), old_error=BY_USER)
    except Exception:  # noqa: BLE001 - the store cannot be written at all: say which rows were left
        with contextlib.suppress(Exception), open_store(data_dir, read_only=True) as store:
            return [n for n in names
                    if (src := store.find_source(n)) is not None and src["status"] == VideoStatus.running]
        return names
    return []


def left_running_note(names: list[str]) -> str:
    """What the error message adds when videos stayed `running` (end_running could not write their status)."""
    return (f"The status of {len(names)} video(s) being processed could not be stored ({', '.join(names)}: left "
            "`running`); the rerun redoes them.")


def plan(store: Store, rows: list[ManifestRow], cfg: FetchConfig, manifest: Path,
         current: dict[str, Any] | None = None) -> tuple[list[ManifestRow], list[VideoResult], dict[str, str]]:
    """Split rows into those to process now and those skipped (final status, or failed without --retry-failed),
    and give the sources that take the manifest's new URL ({name: old URL}).

    A stored video whose URL is not the row's takes the row's URL when it owns no crop (whatever its status: a
    typo'd or dead link that failed, a pending or interrupted row): it is processed with it and the change is
    recorded in its meta `url_changes` (from, to, the old status and error, when). One that owns crops keeps its
    URL: InputError saying so (its crops came from the other URL). A new source row records the manifest's
    descriptive columns (license, title, meta 'manifest') at once, so `lrfp stats` shows them while it is pending.

    With `current` (this run's settings, video.settings), a video done earlier with other settings
    (config.changed_settings) is skipped with `changed` set, or
    redone with --redo: its crops that come out identical keep their ids and labels; those that no longer
    come out are removed unless labeled or in a split (Store.prune_source_crops), and counted.
    """
    conflicts = []
    rows_by_name = {row.name: row for row in rows}
    todo: list[ManifestRow] = []
    redo: list[str] = []
    skipped: list[VideoResult] = []
    moved: dict[str, Any] = {}  # name -> its stored row, for the sources that take the manifest's new URL
    for row in rows:
        src = store.find_source(row.name)
        if src is not None and src["kind"] != "video":
            conflicts.append(f"{manifest}:{row.line}: source name {row.name!r} is already an imported folder in the "
                             "store; give this row another id")
            continue
        if src is not None and src["url"] != row.url:
            if (n := store.count_crops(int(src["id"]))) > 0:
                conflicts.append(
                    f"{manifest}:{row.line}: source {row.name!r} has {n} crop(s) from another URL ({src['url']}): "
                    "they came from that video, so the source keeps that URL; give this row another id (or put "
                    "the stored URL back)")
                continue
            moved[row.name] = src  # no crop came from the old URL (a typo, a dead link): the row takes the new one
            todo.append(row)
            continue
        status = src["status"] if src is not None else None
        if status == VideoStatus.ok and store.count_crops(int(src["id"])) == 0:
            todo.append(row)  # `ok` but it owns no crop (the same footage as another source, before lrfp told them
            continue          # apart: docs/fetch.md): processed again, it says whose crops they are
        changed = (changed_settings(json.loads(src["meta"] or "{}"), current, row.meta())
                   if status in DONE and current is not None else {})
        if changed and cfg.redo:
            todo.append(row)
            redo.append(row.name)
        elif status in DONE or (status in FAILED and not cfg.retry_failed):
            skipped.append(VideoResult(row.name, row.url, status, src["error"], skipped=True, changed=changed or None,
                                       described=described_changes(src, row) or None))
        else:
            todo.append(row)
    if conflicts:
        raise InputError("\n".join(conflicts))
    for r in skipped:  # a descriptive column changed: record it without reprocessing (the crops do not depend on it)
        if r.described:
            record_description(store, store.find_source(r.name), rows_by_name[r.name])
    for name in redo:
        begin_redo(store, name)  # a redo that fails gives the video back as it was (video.end_redo)
    for row in todo:  # a video to redo keeps its status (and crops) until its redo begins: a run stopped before
        if row.name in redo:  # it leaves it as it was, not `pending` beside crops of the earlier settings
            continue
        src = store.find_source(row.name)
        fields: dict[str, Any] = {"url": row.url, "status": VideoStatus.pending, "error": None}
        if src is None or row.name in moved:  # what the manifest says of it, seen by `lrfp stats` before it is done
            fields.update({k: getattr(row, k) for k in ("title", "license") if getattr(row, k) is not None})
            meta = json.loads(src["meta"] or "{}") if src is not None else {}
            meta["manifest"] = row.meta()
            if row.name in moved:
                old = moved[row.name]
                remove_downloads(store.root / DOWNLOADS_DIR, old["url"])  # a partial download an interrupt left
                meta["url_changes"] = [*meta.get("url_changes", []), {
                    "from": old["url"], "to": row.url, "status": old["status"], "error": old["error"], "at": now()}]
            fields["meta"] = meta
        store.upsert_source(row.name, "video", **fields)
    return todo, skipped, {name: str(src["url"]) for name, src in moved.items()}


def _not_begun(result: VideoResult | None) -> bool:
    """No result, or a worker's `skipped` one for a row it never began (the stop came first)."""
    return result is None or result.skipped


def release_unbegun_redos(data_dir: Path, names: list[str]) -> None:
    """The videos of `names` (this run's, without a result) that a --redo was to redo but never began -- the run
    was stopped first -- lose the earlier state `begin_redo` saved: they are as they were, as if no redo had been
    asked (a rerun with --redo redoes them). A store that cannot be written keeps it (harmless: the next redo of
    the video reuses it)."""
    from lrfp.fetch.video import REDO_KEY

    with contextlib.suppress(Exception), open_store(data_dir) as store:
        for name in names:
            src = store.find_source(name)
            if src is not None and src["status"] in DONE and store.get_setting(REDO_KEY + name) is not None:
                store.delete_setting(REDO_KEY + name)


def described_changes(src: Any, row: ManifestRow) -> list[str]:
    """The descriptive manifest columns (config.ROW_SETTINGS are not) whose value in `row` differs from what the
    stored source `src` records, e.g. ['license', 'title']. A column the row leaves empty is not a change (the
    stored value, perhaps from yt-dlp, stays)."""
    made_with = json.loads(src["meta"] or "{}").get("manifest") or {}
    changed = [k for k in ("license", "title") if getattr(row, k) is not None and getattr(row, k) != src[k]]
    now = row.meta()
    for key, value in now.items():
        if key not in ROW_SETTINGS and made_with.get(key) != value:
            changed.append(key)
    return changed


def record_description(store: Store, src: Any, row: ManifestRow) -> None:
    """Store the row's descriptive columns (title, license, city, place, recorded, notes, extras) on source `src`,
    keeping what its crops were made with (start/end, settings), its status, and any column the row leaves empty."""
    meta = json.loads(src["meta"] or "{}")
    made_with = meta.get("manifest") or {}
    meta["manifest"] = {**made_with, **{k: v for k, v in row.meta().items() if k not in ROW_SETTINGS}}
    fields: dict[str, Any] = {"meta": meta}
    if row.license is not None:
        fields["license"] = row.license
    if row.title is not None:
        fields["title"] = row.title
    store.upsert_source(row.name, "video", **fields)


@contextlib.contextmanager
def first_ctrl_c_sets(stop: threading.Event, emit: Emit):
    """First Ctrl-C or SIGTERM (kill, timeout, a scheduler's pre-emption): finish the current frame and stop
    cleanly. A second one interrupts at once (interrupts.first_signal_stops)."""
    from lrfp.interrupts import first_signal_stops, signal_name

    def on_stop(signum: int) -> None:
        stop.set()
        again = "Ctrl-C again quits" if signum == signal.SIGINT else "a second signal quits"
        emit(FetchEvent("message", message=f"stopping ({signal_name(signum)}): the current videos are marked "
                                           f"interrupted ({again} now)"))

    with first_signal_stops(on_stop):
        yield


def _run_here(data_dir, todo, cfg, model, emit, stop, results) -> bool:
    with open_store(data_dir) as store:
        for row in todo:
            if stop.is_set():
                break
            results[row.name] = r = fetch_video(store, row, cfg, model, emit, stop.is_set)
            emit(FetchEvent("done", row.name, result=r))
    return stop.is_set()
