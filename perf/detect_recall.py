"""Recall and precision of each face detector and tiling per face-size band, on ../shared/data/faces_gt.

Matching (the faces_gt README): a detection matches a face at IoU >= 0.3 (one-to-one, Hungarian assignment
maximising IoU); a detection on an ignored region is neither a hit nor a false positive; a missed ignored region
is not a miss. Face size = sqrt(w*h) of the ground-truth box (of the detection for false positives).
Timing: ms per frame, median over the frames, on whatever cores the process may use: run it under
`taskset -c 0` for one core (the docs' figures are).

Usage:
  taskset -c 0 python perf/detect_recall.py --gt ../shared/data/faces_gt --models-dir ../shared/models \
      --json perf/detect_recall.json --markdown docs/detectors-table.md
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from lrfp.machine import cpu_name

BANDS = [("<16", 0, 16), ("16-24", 16, 24), ("24-32", 24, 32), ("32-48", 32, 48), (">=48", 48, 1e9)]
MATCH_IOU = 0.3


def band_of(box: list[float]) -> str:
    s = (box[2] * box[3]) ** 0.5
    return next(name for name, lo, hi in BANDS if lo <= s < hi)


def load_gt(gt_dir: Path) -> list[dict]:
    return json.loads((gt_dir / "boxes.json").read_text())["frames"]


def match_frame(gt_boxes: list[dict], dets: list[tuple[float, float, float, float]]) -> dict:
    """Counts for one frame: per band hits/faces (by ground-truth size) and false positives (by detection size)."""
    import torch
    from scipy.optimize import linear_sum_assignment
    from torchvision.ops import box_iou

    def xyxy(bs):
        return torch.tensor([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in bs], dtype=torch.float64).reshape(-1, 4)

    faces = [g["box"] for g in gt_boxes if not g["ignore"]]
    ignored = [g["box"] for g in gt_boxes if g["ignore"]]
    out = {"faces": {}, "hits": {}, "fp": {}, "tp_det": {}, "sizes_hit": [], "sizes_all": []}
    hit_face: set[int] = set()
    used_det: set[int] = set()
    if faces and dets:
        iou = box_iou(xyxy(faces), xyxy(dets)).numpy()
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] >= MATCH_IOU:
                hit_face.add(int(r))
                used_det.add(int(c))
    for i, f in enumerate(faces):
        b = band_of(f)
        out["faces"][b] = out["faces"].get(b, 0) + 1
        s = (f[2] * f[3]) ** 0.5
        out["sizes_all"].append(s)
        if i in hit_face:
            out["hits"][b] = out["hits"].get(b, 0) + 1
            out["sizes_hit"].append(s)
    rest = [j for j in range(len(dets)) if j not in used_det]
    if rest and ignored:
        iou_ign = box_iou(xyxy([dets[j] for j in rest]), xyxy(ignored)).numpy()
        rest = [j for k, j in enumerate(rest) if not (iou_ign[k] >= MATCH_IOU).any()]
    for j in used_det:
        b = band_of(list(dets[j]))
        out["tp_det"][b] = out["tp_det"].get(b, 0) + 1
    for j in rest:
        b = band_of(list(dets[j]))
        out["fp"][b] = out["fp"].get(b, 0) + 1
    return out


def evaluate(gt_dir: Path, frames: list[dict], detector: str, tiles: str, min_score: float, models_dir: Path | None,
             run_at: float | None = None) -> dict:
    """One detector and tiling over the frames. run_at: the score the detector runs at, if lower than min_score
    (as `lrfp fetch` does: lrfp.fetch.detect.SCORE_FLOOR); detections under min_score are then dropped."""
    import cv2

    from lrfp.fetch.detect import DetectorSettings, FrameDetector
    from lrfp.fetch.detectors import get_detector
    from lrfp.fetch.detectors.tiles import parse_tiles
    from lrfp.fetch.detectors.weights import find_model

    spec = get_detector(detector)
    weights = find_model("full", models_dir) if spec.needs_weights_file else None
    settings = DetectorSettings(detector, weights, min_score if run_at is None else run_at, parse_tiles(tiles))
    faces: dict[str, int] = {}
    hits: dict[str, int] = {}
    fp: dict[str, int] = {}
    tp_det: dict[str, int] = {}
    ms: list[float] = []
    r1640 = [0, 0]
    with FrameDetector(settings) as fd:
        for fr in frames:
            img = cv2.imread(str(gt_dir / "frames" / fr["frame"]))
            if not ms:
                fd.detect(img)  # the first call allocates (and is quieted): not timed
            t0 = time.perf_counter()
            dets = [d for d in fd.detect(img) if d.score >= min_score]
            ms.append((time.perf_counter() - t0) * 1000)
            m = match_frame(fr["boxes"], [d.box for d in dets])
            for k, acc in (("faces", faces), ("hits", hits), ("fp", fp), ("tp_det", tp_det)):
                for b, n in m[k].items():
                    acc[b] = acc.get(b, 0) + n
            r1640[0] += sum(1 for s in m["sizes_hit"] if 16 <= s < 40)
            r1640[1] += sum(1 for s in m["sizes_all"] if 16 <= s < 40)
    row = {
        "detector": detector, "tiles": tiles, "min_score": min_score, "run_at": run_at, "frames": len(frames),
        "faces": sum(faces.values()), "hits": sum(hits.values()), "false_positives": sum(fp.values()),
        "recall_16_40": r1640[0] / r1640[1] if r1640[1] else None, "faces_16_40": r1640[1],
        "ms_per_frame_median": statistics.median(ms) if ms else None,
    }
    tp = sum(tp_det.values())
    row["recall"] = row["hits"] / row["faces"] if row["faces"] else None
    row["precision"] = tp / (tp + row["false_positives"]) if tp + row["false_positives"] else None
    for name, _, _ in BANDS:
        n = faces.get(name, 0)
        row[f"recall {name}"] = hits.get(name, 0) / n if n else None
        row[f"faces {name}"] = n
        row[f"fp {name}"] = fp.get(name, 0)
    return row


def markdown(rows: list[dict], command: str) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.0f}%"

    head = ["detector", "tiles", "score >=", *[f"recall {b}" for b, _, _ in BANDS], "**recall 16-40 px**", "precision",
            "false pos.", "ms/frame"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        score = f"{r['min_score']:g}" + (f" (run at {r['run_at']:g})" if r.get("run_at") is not None else "")
        cells = [r["detector"], r["tiles"], score, *[pct(r[f"recall {b}"]) for b, _, _ in BANDS],
                 f"**{pct(r['recall_16_40'])}**", pct(r["precision"]), str(r["false_positives"]),
                 f"{r['ms_per_frame_median']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    n = rows[0] if rows else {}
    faces = ", ".join(f"{b}: {n.get(f'faces {b}', 0)}" for b, _, _ in BANDS)
    lines += ["", f"Faces per band (not ignored): {faces}; 16-40 px: {n.get('faces_16_40')}. "
              f"{n.get('frames')} frames.", "",
              f"Machine: {cpu_name()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}.",
              f"Command: `{command}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", type=Path, default=Path("../shared/data/faces_gt"))
    p.add_argument("--models-dir", type=Path, default=Path("../shared/models"))
    p.add_argument("--runs", nargs="+", default=["blazeface:off:0.5", "blazeface:auto:0.5", "yunet:off:0.5"],
                   help="DETECTOR:TILES:MIN_SCORE[@RUN_AT] (RUN_AT: the score the detector runs at, then filtered)")
    p.add_argument("--frames", nargs="*", default=None, help="only these frame files")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    frames = load_gt(a.gt)
    if a.frames:
        frames = [f for f in frames if f["frame"] in set(a.frames)]
    rows = []
    for run in a.runs:
        det, tiles, score = run.split(":")
        score, _, run_at = score.partition("@")
        row = evaluate(a.gt, frames, det, tiles, float(score), a.models_dir, float(run_at) if run_at else None)
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])
    if a.json:
        a.json.write_text(json.dumps({"machine": cpu_name(), "command": command, "rows": rows}, indent=1))
    if a.markdown:
        a.markdown.write_text(markdown(rows, command))
    else:
        print(markdown(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
