"""Label-error ranking on SMFD: flip 5% of the labels at random (fixed seed), run `lrfp review-labels`'s
library call, and report the precision of its top-k list (k = number flipped). Goal: >= 0.8.

Every SMFD image is imported (downscaled to --max-side px, like a low-resolution street crop) with its
groups, so the folds keep a photo's masked/unmasked and mirrored copies together. Usage:

  python -m perf.label_issues                          # defaults of `lrfp review-labels`
  python -m perf.label_issues --input-size 64 --epochs 30 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lrfp.machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
SMFD = Path(os.environ.get("LRFP_SHARED", REPO.parent / "shared")) / "data" / "smfd"


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraction", type=float, default=0.05, help="share of labels flipped")
    ap.add_argument("--seed", type=int, default=0, help="seed of the flips (and of the folds/models)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--input-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--max-side", type=int, default=48)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="write the result here too")
    args = ap.parse_args(argv)

    import torch

    from lrfp.import_folder import ImportConfig, import_folder
    from lrfp.review.oof import OofConfig
    from lrfp.review.run import ReviewConfig, review_labels
    from lrfp.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="lrfp-label-issues-"))
    try:
        with open_store(tmp / "data") as store:
            import_folder(store, ImportConfig(folder=SMFD, source="smfd", groups_csv=SMFD / "smfd_groups.csv",
                                              max_side=args.max_side))
            ids = list(store.current_labels())
            flipped = random.Random(args.seed).sample(ids, round(len(ids) * args.fraction))
            for crop_id in flipped:
                given = store.current_label(crop_id)
                store.add_label(crop_id, "without_mask" if given == "with_mask" else "with_mask", "perf-flip")
            cfg = ReviewConfig(folds=args.folds, oof=OofConfig(input_size=args.input_size, epochs=args.epochs,
                                                               seed=args.seed, device=args.device))
            t0 = time.perf_counter()
            result = review_labels(store, cfg)
            seconds = time.perf_counter() - t0
        k = len(flipped)
        flipped_set = set(flipped)
        top = [r["crop_id"] for r in result.rows[:k]]
        flagged = {r["crop_id"] for r in result.rows if r["is_issue"]}
        out = {
            "machine": machine(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "command": "python -m perf.label_issues " + " ".join(argv if argv is not None else sys.argv[1:]),
            "torch_threads": torch.get_num_threads(), "crops": result.n, "flipped": k,
            "precision_at_k": sum(c in flipped_set for c in top) / k,
            "recall_at_2k": sum(c in flipped_set for c in [r["crop_id"] for r in result.rows[:2 * k]]) / k,
            "flagged": len(flagged), "flagged_precision": len(flagged & flipped_set) / len(flagged) if flagged else None,
            "flagged_recall": len(flagged & flipped_set) / k, "oof_accuracy_vs_given": result.oof_accuracy,
            "seconds": round(seconds, 1), "params": {"folds": args.folds, "input_size": args.input_size,
                                                      "epochs": args.epochs, "max_side": args.max_side},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
