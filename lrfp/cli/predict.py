"""`lrfp predict` and `lrfp export`: use a checkpoint written by `lrfp bench`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from lrfp import interrupts
from lrfp.cli.options import (
    DEFAULT_DATA_DIR, DataDir, Detector, Downscale, Every, Margin, MinFace, MinScore, ModelsDir, Tiles,
)
from lrfp.predict.faces import FaceSettings

if TYPE_CHECKING:
    from lrfp.predict.run import PredictRun

CheckpointOpt = Annotated[
    Optional[Path], typer.Option("--checkpoint", "-c", dir_okay=False, help="A .pt written by `lrfp bench` (BENCH_OUT/checkpoints/CONFIG.pt).")
]
FromOpt = Annotated[
    Optional[Path], typer.Option("--from", help="An `lrfp bench --out` folder: use its checkpoint of --config (best on validation).")
]
ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="With --from: the configuration, e.g. model3 or model1-bn.")]


def predict(
    target: Annotated[
        Optional[str], typer.Argument(help="A video file or URL, or a folder of images; leave out for the store's crops.")
    ] = None,
    checkpoint: CheckpointOpt = None,
    from_: FromOpt = None,
    config: ConfigOpt = None,
    all_crops: Annotated[bool, typer.Option("--all", help="Store: every crop, labeled ones too (default: the unlabeled ones).")] = False,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA where present), cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Crops per forward pass (default: 8 on a CPU, 256 on CUDA).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Folder for a video's or folder's outputs (CSV, Parquet, PNG).")] = Path("predictions"),
    video_out: Annotated[Optional[Path], typer.Option("--video-out", dir_okay=False, help="Video: also write the sampled frames, boxes coloured by class, as this MP4.")] = None,
    every: Every = FaceSettings.every_s,
    min_face: MinFace = FaceSettings.min_face,
    min_score: MinScore = FaceSettings.min_score,
    margin: Margin = FaceSettings.margin,
    detector: Detector = FaceSettings.detector,
    tiles: Tiles = FaceSettings.tiles,
    models_dir: ModelsDir = None,
    downscale: Downscale = False,
    store_as: Annotated[Optional[str], typer.Option("--store-as", help=(
        "Video: also store its faces in the store (-d) as `lrfp fetch` would (crops with provenance, source NAME), "
        "with their predictions (never labels). Without it nothing is written to the store."))] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Classify face crops with a checkpoint of `lrfp bench`: the store's, a video's, or a folder's.

    Store (no TARGET): class probabilities go into the store as predictions (never labels); `lrfp stats` counts
    them. Video file or URL: faces found as `lrfp fetch` finds them, classified per frame and per track; CSV,
    Parquet, tracks CSV and a PNG of the masked share go to --out; nothing goes into the store. Folder: a
    prediction per image; with with_mask/ and without_mask/ subfolders, accuracy and its 95% interval.

    Example:
      lrfp predict --from bench-results --config model3
      lrfp predict street.mp4 --checkpoint bench-results/checkpoints/model3.pt --video-out street.annotated.mp4
    """
    from lrfp.cli.console import err, out as console
    from lrfp.cli.progress import make_progress
    from lrfp.predict.run import CheckpointChoice, PredictConfig, run_predict

    cfg = PredictConfig(
        checkpoint=CheckpointChoice(checkpoint, from_, config), target=target, data_dir=data_dir, all_crops=all_crops,
        device=device, batch_size=batch_size, out=out, video_out=video_out, store_as=store_as,
        faces=FaceSettings(every_s=every, min_face=min_face, min_score=min_score, margin=margin, detector=detector, tiles=tiles,
                           models_dir=models_dir, downscale=downscale),
    )
    if target is not None and store_as is None:  # nothing is stored: "what was stored stays" would mislead
        from lrfp.cli import on_interrupt_say

        on_interrupt_say("Interrupted: no output was written (a video's or folder's files appear only when all are "
                         "complete); rerun the same command.")
    with contextlib.ExitStack() as stack:
        # The bar starts with the first progress event: an error found by the checks is then the only output.
        tasks: dict[str, Any] = {}
        bars: list[Any] = []

        def on_progress(stage: str, done: float, total: float | None) -> None:
            if not bars:
                bars.append(stack.enter_context(make_progress()))
            if stage not in tasks:
                tasks[stage] = bars[0].add_task(stage, total=total)
            bars[0].update(tasks[stage], completed=done, total=total)

        run = run_predict(cfg, progress=on_progress, on_message=lambda m: err.print(m))
        interrupts.work_done()  # stored: a signal now would only cut the summary short
    for line in _summary(run):
        console.print(line)


def export(
    checkpoint: CheckpointOpt = None,
    from_: FromOpt = None,
    config: ConfigOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="The .onnx file to write.")] = Path("model.onnx"),
    check_on: Annotated[
        Optional[Path], typer.Option("--check-on", help="Face images to compare ONNX and PyTorch on (default: the store's crops).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write a checkpoint of `lrfp bench` as ONNX, preprocessing in its metadata, checked against PyTorch.

    The model takes N x 3 x S x S float32 RGB, scaled to 0..1 and normalized with the checkpoint's mean/std,
    and returns softmax probabilities in the checkpoint's class order; these facts are the file's
    metadata_props. It is run with onnxruntime on real crops and compared with PyTorch.

    Example:
      lrfp export --from bench-results --config model3 -o model3.onnx
    """
    from lrfp.cli.console import out as console
    from lrfp.predict.run import CheckpointChoice, ExportConfig, run_export

    res = run_export(ExportConfig(checkpoint=CheckpointChoice(checkpoint, from_, config), out=out, check_on=check_on,
                                  data_dir=data_dir))
    interrupts.work_done()  # stored: a signal now would only cut the summary short
    m = res.metadata
    console.print(f"Wrote {res.path}: {m['lrfp_config']}, input {m['input_layout']}, {m['color_order']}, "
                  f"mean {m['mean']}, std {m['std']}, classes {m['classes']}")
    console.print(f"Checked on {res.checked_images} real crops with onnxruntime: max |p_onnx - p_torch| = "
                  f"{res.max_abs_diff:.2e}, same class for {res.same_decisions}/{res.checked_images}")


# -- presentation only (the work is in lrfp.predict) ----------------------------------------------


def _summary(run: "PredictRun") -> list[Any]:
    ck = run.checkpoint
    head = f"{ck.config} ({ck.path.name}, sha256 {ck.sha256[:12]}, input {ck.input_size} px) on {run.device}"
    r = run.result
    if run.kind == "store":
        t = Table(title=f"predict: store, {head}", show_header=False, title_justify="left")
        t.add_column(style="bold")
        t.add_column(justify="right")
        t.add_row("crops predicted now", str(r.crops))
        for c in ck.classes:
            t.add_row(f"  predicted {c}", str(r.predicted.get(c, 0)))
        if r.unreadable:
            t.add_row("unreadable crops (no prediction)", str(len(r.unreadable)))
        t.add_row("crops with a prediction in the store", str(r.predicted_total))
        t.add_row("  of them disagreeing with their label", str(r.disagreements))
        lines: list[Any] = [t]
        if r.crops == 0:
            lines.append("No crop to predict: every crop has a label (use --all to predict those too).")
        return lines
    if run.kind == "folder":
        t = Table(title=f"predict: {r.folder}, {head}", show_header=False, title_justify="left")
        t.add_column(style="bold")
        t.add_column(justify="right")
        t.add_row("images predicted", str(len(r.rows)))
        for c in ck.classes:
            t.add_row(f"  predicted {c}", str(sum(x["predicted"] == c for x in r.rows)))
        if r.skipped:
            t.add_row("skipped (unreadable images, broken links, not files)", str(len(r.skipped)))
            for rel, why in r.skipped[:5]:
                t.add_row(f"  {escape(rel)}", escape(why))
            if len(r.skipped) > 5:
                t.add_row(f"  {len(r.skipped) - 5} more", "")
        if r.accuracy is not None:
            t.add_row(f"accuracy on {r.labeled} images in class folders", f"{100 * r.accuracy:.1f}%")
            t.add_row("  95% interval (Wilson)", f"{100 * r.ci95[0]:.1f}-{100 * r.ci95[1]:.1f}%")
        return [t, "Wrote " + ", ".join(str(p) for p in r.files)]
    t = Table(title=f"predict: {r.source}, {head}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    t.add_row("frames sampled", str(r.frames))
    t.add_row("faces classified", str(r.faces))
    t.add_row("tracks", str(len(r.tracks)))
    for c in ck.classes:
        t.add_row(f"  tracks decided {c}", str(r.decisions.get(c, 0)))
    t.add_row("video s per wall s", f"{r.speed:.1f}" if r.speed else "-")
    t.add_row("  time decode / detect / classify (s)", f"{r.decode_s:.2f} / {r.detect_s:.2f} / {r.classify_s:.2f}")
    lines = [t]
    if r.faces == 0:
        lines.append(f"No face found in {r.frames} sampled frames ({r.detector}): the CSVs have a header only.")
    lines.append("Wrote " + ", ".join(str(p) for p in r.files))
    if run.stored is not None:
        fetched, preds = run.stored
        lines.append(f"Stored as source {fetched.name}: {fetched.status}, {fetched.crops_kept} crops "
                     f"({fetched.crops_new} new), {preds.crops} with a prediction (never a label); "
                     "`lrfp label --order uncertain` shows the least certain first.")
        if fetched.error:
            lines.append(f"  {fetched.error}")
    return lines
