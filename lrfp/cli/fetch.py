"""`lrfp fetch`: video URLs from a manifest to face crops in the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from lrfp import interrupts
from lrfp.cli.options import (
    DEFAULT_DATA_DIR, DataDir, Detector, Downscale, Every, Margin, MinFace, MinScore, ModelsDir, Tiles,
)
from lrfp.fetch.config import FetchConfig

if TYPE_CHECKING:
    from lrfp.fetch.results import FetchEvent


def fetch(
    manifest: Annotated[Path, typer.Argument(help="CSV manifest with a url column (see manifests/lima.csv).")],
    every: Every = FetchConfig.every_s,
    min_face: MinFace = FetchConfig.min_face,
    min_score: MinScore = FetchConfig.min_score,
    margin: Margin = FetchConfig.margin,
    per_track: Annotated[int, typer.Option("--per-track", help="Crops kept per face track (spaced in time).")] = 3,
    detector: Detector = FetchConfig.detector,
    tiles: Tiles = FetchConfig.tiles,
    model: Annotated[str, typer.Option("--model", hidden=True, help="BlazeFace weights: full (the only one left).")] = "full",
    models_dir: ModelsDir = None,
    downscale: Downscale = False,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Videos processed in parallel (processes).")] = 1,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also redo rows whose earlier run failed.")] = False,
    redo: Annotated[bool, typer.Option(
        "--redo",
        help="Reprocess videos done earlier with other settings (--every, start/end, --detector, --tiles, --downscale, "
             "thresholds, margin, --per-track). A redo that fails keeps the earlier status, settings and crops. "
             "Crops that come out identical keep their labels; crops that no longer come out are removed, "
             "except labeled ones (or in a split), which are kept and counted.",
    )] = False,
    keep_videos: Annotated[bool, typer.Option("--keep-videos", help="Keep downloaded files in DATA_DIR/downloads.")] = False,
    cookies: Annotated[Optional[Path], typer.Option("--cookies", help="Netscape cookies file for yt-dlp (YouTube's bot check).")] = None,
    cookies_from_browser: Annotated[
        Optional[str], typer.Option("--cookies-from-browser", help="Let yt-dlp read cookies from this browser (firefox, chrome, ...).")
    ] = None,
    sleep: Annotated[float, typer.Option("--sleep", help="Seconds yt-dlp waits before each download/request.")] = 0.0,
    retries: Annotated[int, typer.Option("--retries", help="yt-dlp retries per download.")] = 3,
    proxy: Annotated[
        Optional[str], typer.Option("--proxy", help="HTTP/HTTPS/SOCKS proxy for yt-dlp, e.g. socks5://127.0.0.1:1080.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Download each video below 720p, sample frames, detect faces, store crops with provenance.

    Every video gets a status in the store (ok, no_faces, duplicate, download_failed, not_a_video, too_high_res,
    bad_range, live_stream, truncated, error, interrupted; pending or running: not begun, or cut off by a kill
    -9, which `lrfp stats` tells apart). Rerunning skips videos already done and adds
    no duplicate crop; a video done with other settings is named and skipped unless --redo. One fetch per
    store at a time: a second one is refused (exit 1), naming the first; use --workers to go faster. Ctrl-C stops
    cleanly (exit 130), and so does SIGTERM (exit 143). Exit 0 if every row succeeded, 1 if some failed or the
    disk is full, 2 for bad options or an unusable manifest (checked before anything is downloaded). See
    docs/fetch-faults.md.

    Example:
      lrfp fetch manifests/sample.csv --downscale --workers 2
    """
    from lrfp.cli.console import err, out
    from lrfp.cli.tables import fetch_notes, fetch_summary
    from lrfp.fetch import DownloadOptions, FetchConfig, fetch_manifest

    cfg = FetchConfig(
        every_s=every, min_face=min_face, min_score=min_score, margin=margin, per_track=per_track, model=model,
        detector=detector, tiles=tiles,
        models_dir=models_dir, workers=workers, retry_failed=retry_failed, redo=redo, keep_videos=keep_videos,
        download=DownloadOptions(cookies=cookies, cookies_from_browser=cookies_from_browser, sleep_s=sleep,
                                 retries=retries, downscale=downscale, proxy=proxy),
    )
    from lrfp.store_cleanup import removed_if_left_empty

    with removed_if_left_empty(data_dir), _Display(err) as display:  # refused before storing: no empty store left
        result = fetch_manifest(manifest, data_dir, cfg, on_event=display.on_event)
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    for table in fetch_summary(result):
        out.print(table)
    for note in fetch_notes(result, proxy):
        err.print(note, soft_wrap=True)
    for note in recorded_notes(result) + dns_notes(result):
        err.print(note, soft_wrap=True)
    if result.interrupted:
        raise typer.Exit(130)  # main() says what an interruption means
    if not result.all_ok:
        raise typer.Exit(1)


def recorded_notes(result: Any) -> list[str]:
    """'license recorded for 2 videos (not reprocessed: the crops do not depend on it)', one line per column."""
    from collections import Counter

    counts = Counter(c for v in result.videos if v.described for c in v.described)
    return [f"{column} recorded for {n} video{'s' if n != 1 else ''} (not reprocessed: the crops do not depend on it)"
            for column, n in counts.items()] + [
        f"{v.name}: URL changed from {v.url_was} to {v.url} (no crop came from the old one; recorded in its meta "
        "url_changes)" for v in result.videos if v.url_was]


def dns_notes(result: Any) -> list[str]:
    """The rows whose host name could not be looked up, when others did download (all of them: fetch_notes
    says the machine seems offline instead)."""
    from rich.markup import escape

    failed = result.dns_failed
    if not failed or result.offline:
        return []
    listed = "; ".join(f"{v.name} ({v.url})" for v in failed[:5]) + (f"; ... {len(failed) - 5} more" if len(failed) > 5 else "")
    return [f"[red]{len(failed)} download(s) failed to look up their host name (DNS): {escape(listed)}.[/red] "
            "Check those URLs' host names (or the network), then rerun with --retry-failed (a plain rerun skips failed rows)."]


class _Display:
    """Rich progress: one bar for the run, one per video being processed."""

    def __init__(self, console: Any) -> None:
        from lrfp.cli.progress import make_progress

        self.console = console
        self.progress = make_progress()
        self.overall = None
        self.bars: dict[str, Any] = {}
        self.total = 0
        self.finished = 0

    def __enter__(self) -> "_Display":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.overall is not None:
            self.progress.__exit__(*exc)

    def on_event(self, e: "FetchEvent") -> None:
        from rich.markup import escape

        from lrfp.fetch.config import DONE, VideoStatus

        if self.overall is None:  # started by the first event: a bad manifest shows no bar
            self.progress.__enter__()
            self.overall = self.progress.add_task("videos", total=None)
        p = self.progress
        if e.kind == "message":
            p.console.print(f"[yellow]{escape(e.message or '')}[/yellow]", soft_wrap=True)  # paths stay whole
        elif e.kind == "queued":
            self.total += 1
        elif e.kind == "start":
            self.bars[e.video] = p.add_task(f"{escape(e.video or '')}: download", total=None)
        elif e.kind == "progress" and e.video in self.bars:
            unit = "download" if e.stage == "download" else "frames (video s)"
            p.update(self.bars[e.video], description=f"{escape(e.video or '')}: {unit}", completed=e.done, total=e.total)
        elif e.kind == "done" and e.result is not None:
            r = e.result
            if e.video in self.bars:
                p.remove_task(self.bars.pop(e.video))
            if r.skipped:
                other = " with other settings" if r.changed else ""
                recorded = f"; {', '.join(r.described)} recorded" if r.described else ""
                p.console.print(f"[dim]{escape(r.name)}: {r.status} earlier{other}, skipped{escape(recorded)}[/dim]")
                return
            self.finished += 1
            colour = ("green" if r.status == VideoStatus.ok else "yellow"
                      if r.status in (VideoStatus.no_faces, VideoStatus.duplicate, VideoStatus.interrupted) else "red")
            detail = (f"{r.crops_kept} crops from {r.frames_sampled} frames" if r.status in DONE and not r.error
                      else (r.error or ""))
            if r.crops_others and r.status == VideoStatus.ok:
                detail += f" ({r.crops_others} of them already another source's: same footage)"
            if r.crops_removed or r.labeled_kept:
                detail += (f"; {r.crops_removed} crops of the earlier settings removed"
                           + (f", {r.labeled_kept} labeled ones kept" if r.labeled_kept else ""))
            p.console.print(f"[{colour}]{escape(r.name)}: {r.status}[/{colour}]  {escape(detail)}", soft_wrap=True)
        p.update(self.overall, completed=self.finished, total=self.total or None)
