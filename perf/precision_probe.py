"""Time every config's training step in fp32 and in bf16 autocast + channels-last, as `--precision auto` does
on a CPU (benchmark/precision.py), without its cache; prints one JSON line per config (a script, not a test).

    python -m perf.precision_probe --protocol quick [--model model3 ...] [--out probe.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> list[dict]:
    import torch

    from benchmark.harness import BenchConfig, device_name, plan_runs
    from benchmark.precision import BF16_MIN_GAIN, probe
    from benchmark.protocols import get_protocol

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--model", action="append")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    cfg = BenchConfig(models=tuple(args.model or ()), protocol=args.protocol, seeds=1, device="cpu", pretrained=False,
                      precision="fp32")
    rows = []
    for r in plan_runs(cfg, get_protocol(args.protocol), "cpu"):
        res = probe(r, use_cache=False)
        row = {"machine": device_name("cpu"), "torch": torch.__version__, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               "config": r.config_name, "input_size": r.input_size, "fp32_ms": res.fp32_ms, "bf16_ms": res.bf16_ms,
               "bf16_speedup": round(res.fp32_ms / res.bf16_ms, 2), "auto_picks": "bf16" if res.bf16 else "fp32",
               "rule": f"bf16 if >= {BF16_MIN_GAIN}x"}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
