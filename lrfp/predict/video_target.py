"""`lrfp predict` on a video or URL: every face of every sampled frame classified, tracks decided, written out.

Outputs, in `out_dir` (named after the video's file stem):
  <stem>.faces.csv (+ .parquet where pyarrow is installed)  one row per face: frame, time_s, track, box, detector
                                                            score, p_<class> per class, predicted
  <stem>.tracks.csv        one row per track: first/last time, frames, mean p_<class>, decision
  <stem>.masked_share.png  share of the visible tracks decided with_mask, over time (when there are tracks)
  and, if asked, an annotated MP4 of the sampled frames (boxes coloured by predicted class, with a legend).

Per-track decision: the mean of the frames' class probabilities (soft voting), then its most probable class.
Not the mean of log-probabilities: a track's frames are the same face a fraction of a second apart, not
independent evidence, so summing log-probabilities would count the same evidence many times, and one blurred
frame with a near-zero probability would veto every other frame; averaging probabilities keeps each frame's
weight bounded (the consensus used for video-level decisions from frame scores, e.g. TSN, Wang et al. 2016).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lrfp.atomic import discard, remove_stale_temps, temp_name
from lrfp.errors import LrfpError, UsageError
from lrfp.paths import prepare_output_file
from lrfp.predict.faces import FaceSettings, FaceTimes, FrameFaces, OpenedVideo, is_url, open_video, video_faces
from lrfp.predict.infer import Classifier

log = logging.getLogger(__name__)

FRAMES_PER_BATCH = 16  # frames whose crops are handed to the classifier together (it runs them in batches)
MAX_BUFFERED_FACES = 256  # ... or fewer frames, once they hold this many faces (bounds the memory held)
POSITIVE = "with_mask"  # the class whose share of tracks is plotted
COLORS_BGR = {"with_mask": (60, 180, 60), "without_mask": (40, 40, 220)}  # green, red
OTHER_COLORS_BGR = [(220, 140, 40), (40, 200, 220), (200, 60, 200)]


@dataclass(frozen=True)
class VideoPredictConfig:
    out_dir: Path = Path("predictions")
    faces: FaceSettings = field(default_factory=FaceSettings)
    video_out: Path | None = None  # annotated MP4
    work_dir: Path | None = None  # where a URL is downloaded (default: out_dir/downloads)


@dataclass
class TrackDecision:
    track: int
    first_s: float
    last_s: float
    frames: int
    mean_probs: dict[str, float]
    decision: str


@dataclass
class VideoPredictResult:
    source: str
    frames: int = 0
    faces: int = 0
    tracks: list[TrackDecision] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    video_s: float = 0.0  # video time covered by the sampled frames
    wall_s: float = 0.0
    decode_s: float = 0.0
    detect_s: float = 0.0
    classify_s: float = 0.0
    write_s: float = 0.0  # writing the CSV, Parquet and PNG files (the annotated MP4 is written during the loop)
    detector: str = ""

    @property
    def decisions(self) -> Counter:
        return Counter(t.decision for t in self.tracks)

    @property
    def speed(self) -> float | None:
        """Video-seconds per wall-second."""
        return self.video_s / self.wall_s if self.wall_s > 0 else None


def predict_video(
    source: str, classifier: Classifier, cfg: VideoPredictConfig,
    progress: Callable[[float, float | None], None] | None = None, on_message: Callable[[str], None] | None = None,
) -> VideoPredictResult:
    """Detect, track and classify the faces of a video file or URL; write the outputs listed in the module doc.

    Raises InputError (exit 2) for a missing file or one that is not a video, UsageError for an output folder
    that cannot be written, LrfpError for a failed download. Nothing is written to the store.
    """
    t_start = time.perf_counter()
    out_dir = Path(cfg.out_dir)
    made = _missing_folders(out_dir)  # removed again if the run ends without its outputs (an error, Ctrl-C)
    work_dir = Path(cfg.work_dir or out_dir / "downloads")
    for folder in ([work_dir] if is_url(source) else []) + ([Path(cfg.video_out).parent] if cfg.video_out else []):
        made += [d for d in _missing_folders(folder) if d not in made]
    temps: dict[Path, Path] = {}  # final path -> its temporary file: renamed into place only when all are written
    try:
        _check_writable_dir(out_dir)
        res = _predict_into(source, classifier, cfg, out_dir, work_dir, temps, progress, on_message)
        for final, tmp in temps.items():
            os.replace(tmp, final)
    except BaseException:
        for tmp in temps.values():
            discard(tmp)
        for folder in reversed(made):  # deepest first; only where nothing else was put in it meanwhile
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if is_url(source):  # the download folder was only a means: removed when this run made it and it is left empty
        keep = {out_dir, *out_dir.parents}
        if cfg.video_out:
            keep |= {Path(cfg.video_out).parent, *Path(cfg.video_out).parent.parents}
        for folder in reversed(made):
            if folder not in keep and (folder == work_dir or folder in work_dir.parents):
                with contextlib.suppress(OSError):
                    folder.rmdir()
    res.wall_s = time.perf_counter() - t_start
    return res


def output_stem(source: str, path: Path) -> str:
    """The name a video's outputs start with: the file's stem; for a URL, a readable name from it (its last path
    part, or its `v=` for a YouTube watch page) and 8 hex digits of its sha256, which keep two URLs with the
    same last part apart (`street-3fddeb08.faces.csv`, not the download's hash alone)."""
    if not is_url(source):
        return Path(path).stem
    import hashlib
    import re
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(source)
    readable = (parse_qs(parts.query).get("v") or [""])[0] or Path(parts.path.rstrip("/")).stem or parts.hostname or ""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", readable).strip("._-")[:60] or "video"
    return f"{readable}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, outermost first (what a mkdir -p would make)."""
    missing = []
    for p in [Path(folder), *Path(folder).parents]:
        if p.exists() or p == p.parent:
            break
        missing.append(p)
    return missing[::-1]


def _predict_into(source: str, classifier: Classifier, cfg: VideoPredictConfig, out_dir: Path, work_dir: Path,
                  temps: dict[Path, Path], progress, on_message) -> VideoPredictResult:  # noqa: ANN001
    """predict_video's work, each output written at the temporary name it adds to `temps`."""
    video = open_video(source, work_dir, cfg.faces, on_message)
    stem = output_stem(source, video.path)
    res = VideoPredictResult(source=source, detector=video.detector)
    classes = classifier.classes
    columns = ["frame", "time_s", "track", "x", "y", "w", "h", "score", *[f"p_{c}" for c in classes], "predicted"]
    rows: list[dict[str, Any]] = []
    times = FaceTimes()
    writer: _Annotator | None = None
    classify_s0 = classifier.seconds
    buffer: list[FrameFaces] = []

    def flush() -> None:
        crops = [f.crop for fr in buffer for f in fr.faces]
        probs = classifier.predict_proba(crops) if crops else None
        k = 0
        for fr in buffer:
            labels = []
            for f in fr.faces:
                p = probs[k]
                k += 1
                pred = classes[int(p.argmax())]
                labels.append((pred, float(p.max())))
                rows.append({
                    "frame": fr.index, "time_s": fr.time_s, "track": f.track, "x": f.box[0], "y": f.box[1],
                    "w": f.box[2], "h": f.box[3], "score": round(f.score, 4),
                    **{f"p_{c}": float(v) for c, v in zip(classes, p)}, "predicted": pred,
                })
            if writer is not None:
                writer.write(fr, labels)
        buffer.clear()

    def temp(final: Path) -> Path:
        remove_stale_temps(final)  # a killed earlier run's (kill -9 leaves them; a rerun is the place to clean)
        temps[final] = temp_name(final)
        return temps[final]

    try:
        if cfg.video_out:
            final_mp4 = prepare_output_file(Path(cfg.video_out), ".mp4", f"--video-out {cfg.video_out}")
            writer = _Annotator(temp(final_mp4), video, cfg.faces.every_s, classes, shown=final_mp4)
        for fr in video_faces(video, cfg.faces, times):
            res.frames += 1
            res.video_s = fr.time_s + cfg.faces.every_s
            buffer.append(fr)
            if len(buffer) >= FRAMES_PER_BATCH or sum(len(b.faces) for b in buffer) >= MAX_BUFFERED_FACES:
                flush()
            if progress:
                progress(fr.time_s, video.duration_s)
        flush()
        if writer is not None:
            writer.close(check=True)  # a full disk shows here (OpenCV's writer does not say so)
    finally:
        if writer is not None:
            writer.close()
        if is_url(source):  # the download was only a means (as `lrfp fetch` without --keep-videos)
            with contextlib.suppress(OSError):
                Path(video.path).unlink()
    if video.duration_s is not None:
        res.video_s = min(res.video_s, video.duration_s)
    t_write = time.perf_counter()
    res.faces = len(rows)
    res.tracks = decide_tracks(rows, classes)
    faces_csv = out_dir / f"{stem}.faces.csv"
    _write_csv(temp(faces_csv), columns, rows)
    res.files.append(faces_csv)
    parquet = out_dir / f"{stem}.faces.parquet"
    if _write_parquet(temp(parquet), columns, rows, classes) is not None:
        res.files.append(parquet)
    else:
        discard(temps.pop(parquet))
    tracks_csv = out_dir / f"{stem}.tracks.csv"
    _write_csv(temp(tracks_csv), ["track", "first_s", "last_s", "frames", *[f"p_{c}" for c in classes], "decision"], [
        {"track": t.track, "first_s": t.first_s, "last_s": t.last_s, "frames": t.frames,
         **{f"p_{c}": t.mean_probs[c] for c in classes}, "decision": t.decision}
        for t in res.tracks
    ])
    res.files.append(tracks_csv)
    if res.tracks:
        png = out_dir / f"{stem}.masked_share.png"
        plot_masked_share(temp(png), res.tracks, source, cfg.faces.every_s)
        res.files.append(png)
    if writer is not None and cfg.video_out is not None:
        res.files.append(Path(cfg.video_out))
    res.write_s = time.perf_counter() - t_write
    res.decode_s, res.detect_s = times.decode_s, times.detect_s
    res.classify_s = classifier.seconds - classify_s0
    return res


def decide_tracks(rows: list[dict[str, Any]], classes: tuple[str, ...]) -> list[TrackDecision]:
    """Per track: the mean of its frames' class probabilities and the most probable class of that mean.

    Why the mean of probabilities and not of log-probabilities: see the module docstring.
    """
    by_track: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_track.setdefault(r["track"], []).append(r)
    out = []
    for track, rs in sorted(by_track.items()):
        mean = {c: sum(r[f"p_{c}"] for r in rs) / len(rs) for c in classes}
        out.append(TrackDecision(
            track=track, first_s=min(r["time_s"] for r in rs), last_s=max(r["time_s"] for r in rs),
            frames=len(rs), mean_probs=mean, decision=max(classes, key=mean.__getitem__),
        ))
    return out


def masked_share(tracks: list[TrackDecision], step_s: float) -> list[tuple[float, float, int]]:
    """(time, share of the tracks visible then that are decided with_mask, tracks visible) at 0, step_s, 2 step_s, ...
    up to the last track's end; times with no visible track are left out.

    A track is visible from its first to its last sampled frame. Difference arrays: O(tracks + steps).
    """
    if not tracks:
        return []
    eps = 1e-9
    n = int(max(t.last_s for t in tracks) / step_s + eps) + 1
    visible = [0] * (n + 1)
    masked = [0] * (n + 1)
    for t in tracks:
        lo = max(0, math.ceil(t.first_s / step_s - eps))
        hi = min(n - 1, math.floor(t.last_s / step_s + eps))
        if hi < lo:
            continue
        visible[lo] += 1
        visible[hi + 1] -= 1
        if t.decision == POSITIVE:
            masked[lo] += 1
            masked[hi + 1] -= 1
    out = []
    v = m = 0
    for k in range(n):
        v += visible[k]
        m += masked[k]
        if v:
            out.append((round(k * step_s, 6), m / v, v))
    return out


def plot_masked_share(path: Path, tracks: list[TrackDecision], title: str, step_s: float) -> Path:
    """A PNG of masked_share(tracks, step_s) (step_s: the sampling interval), with the number of visible tracks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = masked_share(tracks, step_s)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    try:
        if pts:
            ax.step([p[0] for p in pts], [100 * p[1] for p in pts], where="post", color="tab:green",
                    label=f"tracks decided {POSITIVE}")
            ax2 = ax.twinx()
            ax2.plot([p[0] for p in pts], [p[2] for p in pts], color="0.6", lw=0.8, label="tracks visible")
            ax2.set_ylabel("tracks visible", color="0.4")
            ax2.set_ylim(0, max(p[2] for p in pts) + 1)
        ax.set_ylim(-2, 102)
        ax.set_xlabel("video time (s)")
        ax.set_ylabel(f"% of visible tracks {POSITIVE}")
        ax.set_title(f"{Path(title).name}: {len(tracks)} tracks", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _check_writable_dir(out_dir: Path) -> None:
    from lrfp.paths import probe_writable, unwritable_message

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe_writable(out_dir)
    except OSError as e:
        raise UsageError(unwritable_message("--out", out_dir, e)) from e


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})


def _write_parquet(path: Path, columns: list[str], rows: list[dict[str, Any]], classes: tuple[str, ...]) -> Path | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.info("pyarrow is not installed: no Parquet file")
        return None
    types = {"frame": pa.int64(), "time_s": pa.float64(), "track": pa.int64(), "x": pa.int64(), "y": pa.int64(),
             "w": pa.int64(), "h": pa.int64(), "score": pa.float64(), "predicted": pa.string(),
             **{f"p_{c}": pa.float64() for c in classes}}
    schema = pa.schema([(c, types[c]) for c in columns])
    table = pa.Table.from_pydict({c: [r[c] for r in rows] for c in columns}, schema=schema)
    pq.write_table(table, path)
    return path


class _Annotator:
    """Writes the sampled frames with boxes coloured by predicted class and a legend (OpenCV, MP4)."""

    def __init__(self, path: Path, video: OpenedVideo, every_s: float, classes: tuple[str, ...], shown: Path) -> None:
        """`path`: where to write (a temporary name); `shown`: the --video-out it becomes, for messages."""
        import cv2

        fps = min(video.fps or 25.0, 1.0 / every_s)
        self.path, self.shown, self.frames = Path(path), shown, 0
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (video.width, video.height))
        if not self.writer.isOpened():
            _raise_if_full(self.path.parent, shown)
            raise UsageError(f"--video-out {shown}: OpenCV cannot write an MP4 there")
        self.colors = {c: COLORS_BGR.get(c, OTHER_COLORS_BGR[i % len(OTHER_COLORS_BGR)]) for i, c in enumerate(classes)}

    def write(self, fr: FrameFaces, labels: list[tuple[str, float]]) -> None:
        import cv2

        img = fr.image.copy()
        for f, (pred, p) in zip(fr.faces, labels):
            x, y, w, h = f.box
            color = self.colors[pred]
            cv2.rectangle(img, (x, y), (x + w, y + h), color, 2)
            cv2.putText(img, f"t{f.track} {p:.2f}", (x, max(10, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
        for i, (cls, color) in enumerate(self.colors.items()):  # legend, top left, on a dark band
            y0 = 6 + 16 * i
            cv2.rectangle(img, (4, y0 - 2), (150, y0 + 14), (0, 0, 0), -1)
            cv2.rectangle(img, (8, y0 + 1), (20, y0 + 11), color, -1)
            cv2.putText(img, cls, (26, y0 + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(img, f"{fr.time_s:6.2f} s", (img.shape[1] - 80, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
        self.writer.write(img)
        self.frames += 1

    def close(self, check: bool = False) -> None:
        """Finish the file (again: harmless); with `check`, raise OSError ENOSPC where the file OpenCV wrote does
        not open with all its frames and the disk is full, LrfpError where it does not open for another reason."""
        import cv2

        self.writer.release()
        if not check:
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok = cap.isOpened() and (self.frames == 0 or int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == self.frames)
        finally:
            cap.release()
        if not ok:
            _raise_if_full(self.path.parent, self.shown)
            raise LrfpError(f"--video-out {self.shown}: OpenCV wrote an MP4 that does not open with its "
                            f"{self.frames} frames")


def _raise_if_full(folder: Path, shown: Path) -> None:
    """Raise OSError ENOSPC naming `shown` where the file system holding `folder` has less than 1 MiB free
    (OpenCV's VideoWriter reports a failed write only as a closed or broken file)."""
    import errno
    import os

    st = os.statvfs(folder)
    if st.f_bavail * st.f_frsize < 1 << 20:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(shown))
