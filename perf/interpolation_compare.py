"""Test accuracy and training speed of `lrfp bench` with the rotation sampled bilinear vs nearest (a script, not a test).

lrfp before 2026-11-30 rotated its training images with bilinear sampling; it now uses nearest, torchvision
`RandomRotation`'s default (benchmark/data.py `ROTATION_INTERPOLATION`). This trains the same grid twice on one
store split, once per interpolation (the protocol's `rotation_interpolation` replaced, nothing else), and reports
per config and budget: mean test accuracy over seeds, their standard deviation, the Wilson 95% interval at the
mean (benchmark/metrics.py), whether the two intervals overlap, and the training images/s.

    taskset -c 0 python -m perf.interpolation_compare STORE --model model3 --model model1 --seeds 3 --threads 1
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path


def _summary(rows: list[dict]) -> dict[str, dict]:
    """"config @epochs" -> the test set's cell of `benchmark.report.summarize` (the report's own mean, sd and
    Wilson interval at the mean), rounded."""
    from benchmark.report import summarize

    return {f"{s['config']} @{s['epochs']}": {
        "seeds": s["seeds"], "accuracy_mean": round(s["accuracy"], 4), "accuracy_std": round(s["accuracy_sd"], 4),
        "ci95": [round(s["acc_ci_low"], 4), round(s["acc_ci_high"], 4)], "n_test": s["n"],
        "train_images_per_s": round(s["train_images_per_s"], 1)} for s in summarize(rows) if s["eval_set"] == "test"}


def main(argv: list[str] | None = None) -> dict:
    import benchmark.protocols as protocols
    from benchmark.harness import BenchConfig, run_bench
    from benchmark.report import RESULTS_JSONL, read_jsonl
    from lrfp.machine import cpu_name
    from perf import code_version, write_result

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path, help="a store folder with a split (e.g. perf.speed_store's STORE/data)")
    ap.add_argument("--model", action="append", default=None, help="repeatable; default model3")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--work", type=Path, default=Path("interpolation-compare"), help="where the two benchmarks go")
    ap.add_argument("--out", help="also write the JSON result here")
    args = ap.parse_args(argv)

    base = protocols.PROTOCOLS[args.protocol]
    result: dict = {"script": "perf.interpolation_compare", "machine": cpu_name(), "code": code_version(),
                    "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "protocol": args.protocol,
                    "seeds": args.seeds, "epochs": args.epochs, "threads": args.threads, "runs": {}}
    for interpolation in ("bilinear", "nearest"):
        protocols.PROTOCOLS[args.protocol] = replace(base, rotation_interpolation=interpolation)
        out = args.work / interpolation
        t0 = time.perf_counter()
        run_bench(BenchConfig(data_dir=args.store, out=out, models=tuple(args.model or ["model3"]),
                              protocol=args.protocol, epochs=args.epochs, seeds=args.seeds, device=args.device,
                              threads=args.threads, precision=args.precision, pretrained=False, fresh=True))
        result["runs"][interpolation] = {"wall_seconds": round(time.perf_counter() - t0, 1),
                                         "configs": _summary(read_jsonl(out / RESULTS_JSONL))}
    protocols.PROTOCOLS[args.protocol] = base
    bil, nea = result["runs"]["bilinear"]["configs"], result["runs"]["nearest"]["configs"]
    result["intervals_overlap"] = {k: bil[k]["ci95"][0] <= nea[k]["ci95"][1] and nea[k]["ci95"][0] <= bil[k]["ci95"][1]
                                   for k in bil if k in nea}
    write_result(result, args.out)
    return result


if __name__ == "__main__":
    main()
