"""Keys per labeled crop in `lrfp label` with model suggestions, on 1,000 unlabeled SMFD crops.

The suggestions come from Model 3 used only on groups it was not trained on: SMFD (1,376 images, downscaled
to --max-side px) is cut into --folds folds grouped by `smfd_groups.csv` (lrfp.review.folds), one model per
fold is trained on the other folds (lrfp.review.oof), and its class probabilities for the held-out fold are
stored as predictions (`Store.add_predictions`, what `lrfp predict` writes). 1,000 of these crops (seeded
sample) go, unlabeled, into a fresh store. A simulated honest user then labels all of them through Textual's
pilot (the real app, real keys, real store):

  single   single view: `y` when the suggestion is right, else the key of the right class (m / n)
  grid     grid view (--size): on each page, arrow keys to each wrong cell and its right key, then `y`
           (confirm the page's other suggestions and go to the next page)

Every key pressed is counted (arrows too); at the end the store must hold the true class of every crop.
Today, without suggestions, it is one key per crop. Grid runs are repeated with the suggestions degraded
at random to lower accuracies (keys vs accuracy). Usage:

  python -m perf.label_keys                              # trains the fold models (minutes on a CPU)
  python -m perf.label_keys --cache /tmp/oof.json        # reuse the predictions of an earlier run
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from perf.label_issues import SMFD, machine

KEY = {"with_mask": "m", "without_mask": "n"}
SHA = "0" * 64  # the fold models are not checkpoints; the predictions say so in their config


def smfd_predictions(args) -> dict:
    """Out-of-group predictions for every SMFD image: {file: {class, group, p_with_mask, png}}."""
    import numpy as np

    from benchmark.data import Subset
    from lrfp import LABELS
    from lrfp.images import downscale, encode_png, load_rgb
    from lrfp.review.folds import grouped_folds
    from lrfp.review.oof import OofConfig, out_of_fold_probabilities

    with open(SMFD / "smfd_groups.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    images, pngs = [], []
    for r in rows:
        im = downscale(load_rgb((SMFD / r["class"] / r["file"]).read_bytes()), args.max_side)
        images.append(np.asarray(im))
        pngs.append(encode_png(im))
    labels = np.asarray([LABELS.index(r["class"]) for r in rows])
    folds = grouped_folds(labels, [r["group_id"] for r in rows], args.folds, args.seed)
    x = Subset(images, labels, np.zeros(len(rows)), [r["file"] for r in rows]).tensor(args.input_size)
    cfg = OofConfig(input_size=args.input_size, epochs=args.epochs, seed=args.seed, device=args.device)
    t0 = time.perf_counter()
    probs = out_of_fold_probabilities(x, labels, folds, cfg, progress=lambda d, k: print(f"fold {d}/{k}", file=sys.stderr))
    return {
        "train_seconds": round(time.perf_counter() - t0, 1),
        "crops": [{"file": f"{r['class']}/{r['file']}", "class": r["class"], "group": r["group_id"],
                   "p_with_mask": float(p[0]), "png": png.hex()} for r, p, png in zip(rows, probs, pngs)],
    }


def build_store(data_dir: Path, crops: list[dict]) -> dict[int, str]:
    """A store of these crops, unlabeled, each with its prediction. Returns {crop_id: true class}."""
    import io

    from PIL import Image

    from lrfp.store import CropOrigin, NewPrediction, open_store

    truth = {}
    with open_store(data_dir) as store:
        src = store.upsert_source("smfd-unlabeled", "folder", status="ok")
        preds = []
        for i, c in enumerate(crops):
            png = bytes.fromhex(c["png"])
            w, h = Image.open(io.BytesIO(png)).size
            crop_id, _ = store.add_crop(src, png, w, h, CropOrigin(original=c["file"], group_id=c["group"], time_s=float(i)))
            truth[crop_id] = c["class"]
            preds.append(NewPrediction(crop_id, SHA, "model3-out-of-group", {"with_mask": c["p_with_mask"],
                                                                             "without_mask": 1 - c["p_with_mask"]}))
        store.add_predictions(preds)
    return truth


async def simulate_single(data_dir: Path, truth: dict[int, str]) -> int:
    from lrfp.label.app import LabelApp
    from lrfp.label.session import LabelConfig, LabelSession
    from lrfp.store import open_store

    keys = 0
    with open_store(data_dir) as store:
        app = LabelApp(LabelSession(store, LabelConfig(annotator="sim")))
        async with app.run_test(size=(120, 40)) as pilot:
            s = app.session
            while s.current_id is not None:
                sug = s.suggestion(s.current_id)
                right = truth[s.current_id]
                await pilot.press("y" if sug is not None and sug.label == right else KEY[right])
                keys += 1
        check(store, truth)
    return keys


def moves(cursor: int, target: int, cols: int) -> list[str]:
    """Fewest arrow presses from cursor to target in a grid whose left/right step by one cell (wrapping rows)."""
    best = None
    for v in range(-8, 9):
        h = target - cursor - v * cols
        cost = abs(v) + abs(h)
        if best is None or cost < best[0]:
            best = (cost, v, h)
    _, v, h = best
    return ["right" if h > 0 else "left"] * abs(h) + ["down" if v > 0 else "up"] * abs(v)


async def simulate_grid(data_dir: Path, truth: dict[int, str], size: tuple[int, int]) -> tuple[int, int]:
    """Returns (keys, pages)."""
    from lrfp.label.app import LabelApp
    from lrfp.label.session import LabelConfig, LabelSession
    from lrfp.store import open_store

    keys = pages = 0
    with open_store(data_dir) as store:
        app = LabelApp(LabelSession(store, LabelConfig(annotator="sim")), grid=True)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            while app.screen.page:
                grid, s = app.screen, app.session
                pages += 1
                for idx, crop_id in enumerate(list(grid.page)):
                    sug = s.suggestion(crop_id)
                    if sug is not None and sug.label == truth[crop_id]:
                        continue
                    path = moves(grid.cursor, idx, grid.columns)
                    if path:
                        await pilot.press(*path)
                    while grid.cursor != idx:  # a clamped move at the edge of a short page: step by one
                        path.append("right" if grid.cursor < idx else "left")
                        await pilot.press(path[-1])
                    await pilot.press(KEY[truth[crop_id]])
                    keys += len(path) + 1
                await pilot.press("y")
                keys += 1
                await pilot.pause()
        check(store, truth)
    return keys, pages


def check(store, truth: dict[int, str]) -> None:
    got = store.current_labels()
    wrong = [i for i, c in truth.items() if got.get(i) != c]
    if wrong:
        raise SystemExit(f"the simulated user left {len(wrong)} crops without their true class: {wrong[:5]}")


def degrade(crops: list[dict], accuracy: float, seed: int) -> list[dict]:
    """The same crops with right suggestions turned wrong at random until `accuracy` is reached."""
    out = [dict(c) for c in crops]
    right = [c for c in out if (c["p_with_mask"] >= 0.5) == (c["class"] == "with_mask")]
    need = len(right) - round(accuracy * len(out))
    for c in random.Random(seed).sample(right, max(0, need)):
        c["p_with_mask"] = 1 - c["p_with_mask"]
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="crops in the labeling store")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--max-side", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="120x40,200x60", help="terminal sizes for the grid runs")
    ap.add_argument("--sweep", default="0.8,0.9,0.95,0.99", help="accuracies for the degraded grid runs (120x40)")
    ap.add_argument("--cache", type=Path, help="read/write the out-of-group predictions here")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    if args.cache and args.cache.exists():
        oof = json.loads(args.cache.read_text())
    else:
        oof = smfd_predictions(args)
        if args.cache:
            args.cache.write_text(json.dumps(oof))
    unique = list({c["png"]: c for c in oof["crops"]}.values())  # SMFD has byte-identical copies: the store keeps one
    crops = random.Random(args.seed).sample(unique, args.n)
    accuracy = sum((c["p_with_mask"] >= 0.5) == (c["class"] == "with_mask") for c in crops) / len(crops)
    result = {
        "machine": machine(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "command": "python -m perf.label_keys " + " ".join(argv if argv is not None else sys.argv[1:]),
        "crops": len(crops), "model": f"model3 at {args.input_size} px, {args.epochs} epochs, {args.folds} grouped folds",
        "train_seconds": oof.get("train_seconds"), "model_accuracy": round(accuracy, 4),
        "keys_per_crop_today": 1.0, "runs": [],
    }
    tmp = Path(tempfile.mkdtemp(prefix="lrfp-label-keys-"))
    try:
        def fresh(name: str, items: list[dict]) -> tuple[Path, dict[int, str]]:
            d = tmp / name
            truth = build_store(d, items)
            assert len(truth) == len(items), "every crop is stored once"
            return d, truth

        d, truth = fresh("single", crops)
        t0 = time.perf_counter()
        keys = asyncio.run(simulate_single(d, truth))
        result["runs"].append({"view": "single", "accuracy": accuracy, "keys": keys,
                               "keys_per_crop": round(keys / len(crops), 3), "seconds": round(time.perf_counter() - t0, 1)})
        print(result["runs"][-1], file=sys.stderr)
        for size_text in args.sizes.split(","):
            size = tuple(int(v) for v in size_text.split("x"))
            d, truth = fresh(f"grid-{size_text}", crops)
            keys, pages = asyncio.run(simulate_grid(d, truth, size))
            result["runs"].append({"view": f"grid {size_text}", "accuracy": accuracy, "keys": keys, "pages": pages,
                                   "keys_per_crop": round(keys / len(crops), 3)})
            print(result["runs"][-1], file=sys.stderr)
        for acc in [float(a) for a in args.sweep.split(",") if a]:
            if acc >= accuracy:
                continue
            items = degrade(crops, acc, args.seed)
            d, truth = fresh(f"sweep-{acc}", items)
            keys, pages = asyncio.run(simulate_grid(d, truth, (120, 40)))
            result["runs"].append({"view": "grid 120x40 (suggestions degraded)", "accuracy": acc, "keys": keys,
                                   "pages": pages, "keys_per_crop": round(keys / len(crops), 3)})
            print(result["runs"][-1], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
