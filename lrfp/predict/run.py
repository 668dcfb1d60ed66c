"""`lrfp predict` and `lrfp export` as library calls: resolve the checkpoint and device, check every input, run.

Checks run before any work, cheapest first: the options, the target (store, folder, file or URL), the
checkpoint (found, loadable, of lrfp bench's format, weights fitting its model, classes those of the store),
the device. Each failure is an LrfpError naming the problem and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lrfp.errors import UsageError
from lrfp.paths import check_output_suffix
from lrfp.predict.faces import FaceSettings, is_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointChoice:
    """--checkpoint PATH, or --from BENCH_OUT --config NAME (exactly one of the two ways)."""

    path: Path | None = None
    results_dir: Path | None = None
    config: str | None = None

    def resolve(self) -> Path:
        from lrfp.predict.checkpoint import best_checkpoint

        if self.path is not None and self.results_dir is not None:
            raise UsageError("give --checkpoint PATH or --from BENCH_OUT --config NAME, not both")
        if self.path is not None:
            if self.config is not None:
                raise UsageError("--config picks a checkpoint in --from BENCH_OUT; with --checkpoint PATH leave it out")
            return Path(self.path)
        if self.results_dir is not None:
            if not self.config:
                raise UsageError("--from BENCH_OUT needs --config NAME (e.g. model3, model1-bn): the configuration whose checkpoint to use")
            return best_checkpoint(Path(self.results_dir), self.config)
        raise UsageError("name the model: --checkpoint PATH (a .pt written by `lrfp bench`) or --from BENCH_OUT --config NAME")


@dataclass(frozen=True)
class PredictConfig:
    checkpoint: CheckpointChoice
    target: str | None = None  # None: the store's crops; a folder: its images; else a video file or URL
    data_dir: Path = Path("lrfp-data")
    all_crops: bool = False
    device: str = "auto"
    batch_size: int | None = None  # None: 8 on a CPU, 256 on CUDA (lrfp.predict.infer.default_batch)
    out: Path = Path("predictions")
    video_out: Path | None = None
    faces: FaceSettings = field(default_factory=FaceSettings)
    store_as: str | None = None  # video: also store its faces as this source of the store, with their predictions


@dataclass
class PredictRun:
    kind: str  # "store", "folder" or "video"
    checkpoint: Any  # lrfp.predict.checkpoint.Checkpoint
    device: str
    result: Any  # StorePredictResult, FolderPredictResult or VideoPredictResult
    stored: Any = None  # video with store_as: (fetch VideoResult, StorePredictResult of its crops)


def target_kind(target: str | None) -> str:
    if target is None:
        return "store"
    if is_url(target):
        return "video"
    p = Path(target).expanduser()
    if p.is_dir():
        return "folder"
    return "video"  # a file (checked to be a video when opened), or a missing path (said so there)


def run_predict(
    cfg: PredictConfig, progress: Callable[[str, float, float | None], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> PredictRun:
    """Predict on cfg.target with the chosen checkpoint; see the module docstring for the checks."""
    from lrfp import LABELS
    from lrfp.predict.checkpoint import check_classes, load_checkpoint
    from lrfp.predict.infer import Classifier, resolve_device

    kind = target_kind(cfg.target)
    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {cfg.batch_size})")
    if cfg.all_crops and kind != "store":
        raise UsageError("--all is for the store's crops (no TARGET); a folder or video is predicted whole")
    if cfg.video_out is not None and kind != "video":
        raise UsageError("--video-out is for a video TARGET")
    if cfg.video_out is not None:
        check_output_suffix(cfg.video_out, ".mp4", f"--video-out {cfg.video_out}")
    if cfg.store_as is not None and kind != "video":
        raise UsageError("--store-as is for a video TARGET (a store's crops are predicted in place; "
                         "a folder goes in with `lrfp import`)")
    if kind == "video":
        cfg.faces.check()
        if not is_url(cfg.target) and not Path(cfg.target).expanduser().exists():
            raise UsageError(f"TARGET {cfg.target}: no such file or folder (give a video file, a URL, or a folder of images; "
                             "leave it out to predict the store's crops)")
    path = cfg.checkpoint.resolve()
    device = resolve_device(cfg.device)
    ckpt = load_checkpoint(path)
    emit = progress or (lambda stage, done, total: None)
    if kind == "store":
        from lrfp.predict.store_target import predict_store
        from lrfp.store import open_store

        with open_store(cfg.data_dir, create=False) as store:
            check_classes(ckpt, LABELS)
            clf = Classifier(ckpt, device, cfg.batch_size)
            result = predict_store(store, clf, all_crops=cfg.all_crops, progress=lambda d, t: emit("crops", d, t))
    elif kind == "folder":
        from lrfp.predict.folder_target import predict_folder

        folder = Path(cfg.target).expanduser()
        clf = Classifier(ckpt, device, cfg.batch_size)
        result = predict_folder(folder, clf, out_csv=Path(cfg.out) / f"{folder.resolve().name}.predictions.csv",
                                progress=lambda d, t: emit("images", d, t))
    else:
        from lrfp.predict.video_target import VideoPredictConfig, predict_video

        clf = Classifier(ckpt, device, cfg.batch_size)
        vcfg = VideoPredictConfig(out_dir=Path(cfg.out), faces=cfg.faces, video_out=cfg.video_out)
        if cfg.store_as is not None:
            from lrfp.predict.faces import check_store_name

            check_store_name(cfg.target, cfg.store_as, cfg.data_dir)
            check_classes(ckpt, LABELS)
        result = predict_video(cfg.target, clf, vcfg, progress=lambda d, t: emit("video", d, t), on_message=on_message)
        if cfg.store_as is not None:
            from lrfp.predict.faces import store_video_faces
            from lrfp.predict.store_target import predict_store
            from lrfp.store import open_store

            from lrfp.store_cleanup import removed_if_left_empty

            with removed_if_left_empty(cfg.data_dir):  # refused before storing a face: no empty store left
                fetched, source_id = store_video_faces(cfg.target, cfg.store_as, cfg.data_dir, cfg.faces, on_message)
            with open_store(cfg.data_dir) as store:
                preds = predict_store(store, clf, all_crops=True, source_id=source_id,
                                      progress=lambda d, t: emit("crops", d, t))
            return PredictRun(kind=kind, checkpoint=ckpt, device=device, result=result, stored=(fetched, preds))
    return PredictRun(kind=kind, checkpoint=ckpt, device=device, result=result)


@dataclass(frozen=True)
class ExportConfig:
    checkpoint: CheckpointChoice
    out: Path = Path("model.onnx")
    check_on: Path | None = None  # a folder of face images to compare ONNX and PyTorch on; else the store's crops
    data_dir: Path = Path("lrfp-data")
    max_check: int = 256


def run_export(cfg: ExportConfig) -> Any:
    """Write the checkpoint as ONNX and compare it with PyTorch on up to max_check real crops.

    The crops come from --check-on FOLDER, else from the store; with neither, UsageError (an unchecked export is
    not offered). Returns lrfp.predict.export.ExportResult.
    """
    from lrfp.predict.checkpoint import load_checkpoint
    from lrfp.predict.export import export_onnx

    check_output_suffix(cfg.out, ".onnx", f"--out {cfg.out}")
    ckpt = load_checkpoint(cfg.checkpoint.resolve())
    images = _check_images(cfg)
    return export_onnx(ckpt, Path(cfg.out), images)


def _check_images(cfg: ExportConfig) -> list[Any]:
    import numpy as np

    from lrfp.images import ImageDecodeError, is_image_name, load_rgb
    from lrfp.paths import check_input_folder

    images: list[Any] = []
    if cfg.check_on is not None:
        folder = Path(cfg.check_on).expanduser()
        check_input_folder(folder, "--check-on", "give a folder of face images (searched with its subfolders)")
        for p in sorted(folder.rglob("*")):
            if len(images) >= cfg.max_check:
                break
            if p.is_file() and is_image_name(p):
                try:
                    images.append(np.asarray(load_rgb(p.read_bytes())))
                except (OSError, ImageDecodeError):
                    continue
        where = f"--check-on {folder}"
    elif (Path(cfg.data_dir) / "lrfp.sqlite").is_file():
        from lrfp.store import open_store

        with open_store(cfg.data_dir, create=False) as store:
            for _, rel in store.crop_paths(limit=cfg.max_check):
                try:
                    images.append(np.asarray(load_rgb(store.crop_file(rel).read_bytes())))
                except (OSError, ImageDecodeError):
                    continue
        where = f"the store {cfg.data_dir}"
    else:
        raise UsageError(
            f"no crops to check the export on: no store at {cfg.data_dir}; give --check-on FOLDER (face images) or -d DATA_DIR"
        )
    if not images:
        raise UsageError(f"{where} has no readable face images to check the export on; give --check-on FOLDER")
    return images
