"""Export a checkpoint as ONNX (softmax included) with its preprocessing in the model's metadata, and check it
against PyTorch on real crops with onnxruntime."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lrfp.errors import InputError
from lrfp.predict.checkpoint import Checkpoint

log = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"


@dataclass
class ExportResult:
    path: Path
    metadata: dict[str, str]
    checked_images: int = 0
    max_abs_diff: float | None = None  # largest |p_onnx - p_torch| over the checked crops and classes
    same_decisions: int = 0  # crops whose most probable class is the same in both
    files: list[Path] = field(default_factory=list)


def preprocessing_metadata(ckpt: Checkpoint) -> dict[str, str]:
    """The model's contract, written into the ONNX file's metadata_props (all values are strings)."""
    return {
        "lrfp_checkpoint_sha256": ckpt.sha256,
        "lrfp_config": ckpt.config,
        "lrfp_version": str(ckpt.meta.get("lrfp_version", "0.1.0")),
        "classes": json.dumps(list(ckpt.classes)),
        "input_size": str(ckpt.input_size),
        "input_layout": f"NCHW float32, N x 3 x {ckpt.input_size} x {ckpt.input_size}",
        "color_order": "RGB",
        "resize": f"stretch the whole face crop to {ckpt.input_size}x{ckpt.input_size}, bilinear (PIL), no padding",
        "scale": "pixel / 255 (0..1)",
        "mean": json.dumps(list(ckpt.mean)),
        "std": json.dumps(list(ckpt.std)),
        "normalize": "(x - mean) / std per channel, after the scale",
        "output": f"{OUTPUT_NAME}: N x {len(ckpt.classes)} softmax probabilities in `classes` order",
    }


def preprocess(images: Sequence[Any], ckpt: Checkpoint) -> Any:
    """RGB uint8 crops -> the float32 numpy input the ONNX model expects (N, 3, S, S), as `lrfp predict` does."""
    import numpy as np
    import torch

    from benchmark.data import Subset, prepare_batch
    from lrfp.predict.infer import _normalize_as

    sub = Subset(list(images), np.zeros(len(images), dtype=np.int64), np.zeros(len(images)), [])
    with torch.inference_mode():
        return _normalize_as(prepare_batch(sub.tensor(ckpt.input_size), train=False), ckpt).numpy().astype(np.float32)


def export_onnx(ckpt: Checkpoint, out: Path, check_images: Sequence[Any] = ()) -> ExportResult:
    """Write `out` (.onnx): the model + softmax, batch size dynamic, preprocessing in metadata_props.

    With check_images (RGB uint8 crops), runs them through onnxruntime and PyTorch and reports the largest
    absolute difference of the probabilities. Raises UsageError for an unwritable or non-.onnx path.
    """
    import onnx
    import torch

    from lrfp.atomic import atomic_path
    from lrfp.paths import prepare_output_file

    out = prepare_output_file(Path(out), ".onnx", str(out))

    class WithSoftmax(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x).softmax(1)

    model = WithSoftmax(ckpt.model.to("cpu").eval()).eval()
    example = torch.zeros(2, 3, ckpt.input_size, ckpt.input_size)
    # Built under a name of its own beside `out` and renamed into place (lrfp.atomic): two exports to one path at
    # once, or one stopped half-way (Ctrl-C, an error), never leave a half-written file under `out` or a temporary.
    with atomic_path(out) as tmp:
        batch = torch.export.Dim("batch", min=1)
        with contextlib.redirect_stdout(io.StringIO()) as said:  # the exporter prints its steps; keep them in the log
            program = torch.onnx.export(
                model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: batch}}, opset_version=OPSET, external_data=False, optimize=True,
                verbose=False,
            )
        log.debug("torch.onnx: %s", said.getvalue().strip())
        program.save(str(tmp), external_data=False)
        proto = onnx.load(str(tmp))
        meta = preprocessing_metadata(ckpt)
        del proto.metadata_props[:]
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        proto.doc_string = f"lrfp {ckpt.config} face-mask classifier; preprocessing in metadata_props"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    res = ExportResult(path=out, metadata=meta, files=[out])
    if check_images:
        res.checked_images, res.max_abs_diff, res.same_decisions = check_against_torch(out, ckpt, check_images)
    return res


def check_against_torch(path: Path, ckpt: Checkpoint, images: Sequence[Any]) -> tuple[int, float, int]:
    """(images, max |p_onnx - p_torch|, same argmax count) for RGB uint8 crops, through onnxruntime on the CPU."""
    import numpy as np
    import onnxruntime as ort
    import torch

    if not len(images):
        raise InputError("no crops to check the ONNX model on")
    x = preprocess(images, ckpt)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    p_onnx = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    with torch.inference_mode():
        p_torch = ckpt.model.to("cpu").eval()(torch.from_numpy(x)).softmax(1).numpy()
    diff = float(np.abs(p_onnx - p_torch).max())
    same = int((p_onnx.argmax(1) == p_torch.argmax(1)).sum())
    return len(images), diff, same
