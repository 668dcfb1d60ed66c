#!/usr/bin/env bash
# The GPU check in one command, for a session that is lent a GPU (device tool). Prepared and run
# on a CPU here with --quick; NOT yet run on a GPU (no GPU was lent to the tasks that built it).
#
# Here, once (the store travels with `carry`, ~18 MB):
#   echo /.speedstore/ >> .git/info/exclude
#   .venv/bin/python -m perf.speed_store .speedstore --n 2000
# On the GPU machine (its python3 has torch, torchvision, numpy, pillow, scikit-learn, matplotlib):
#   run(command="bash perf/gpu_check.sh .speedstore/data", carry=[".speedstore"], timeout_s=600)
#
# 1. Per model, lrfp's loop vs the plain ImageFolder + DataLoader (8 workers) + PIL fp32 loop, 3 timed epochs
#    each, alternating; the whole grid extrapolated for both (goal: lrfp >= 5x the DataLoader grid).
# 2. The real thesis grid, 10 configs x 3 seeds x 80 epochs, timed end to end (goal: under 5 minutes).
set -euo pipefail
STORE=${1:?usage: gpu_check.sh STORE_DIR [--quick]}
MODE=${2:-}
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [[ "$MODE" == "--quick" ]]; then  # a smoke test of this script on any machine: tiny, on the CPU
    ARGS=(--protocol quick --device cpu --workers 2 --epochs 1 --model model3 --seeds 1)
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    ARGS=(--protocol thesis --device cuda --workers 8 --epochs 3)
fi
GRID=$(mktemp -d)/grid  # checkpoints (VGG-16: ~0.5 GB) stay on the machine; the tables and a plot come back
"$PY" -m perf.train_speed -d "$STORE" "${ARGS[@]}" --grid --grid-out "$GRID" --out "$OUT/speed.json" 2>&1 \
    | grep -v '━' | tee "$OUT/log.txt"
cp "$GRID/results.md" "$GRID/results.csv" "$GRID/accuracy_vs_epochs.png" "$OUT/"
