#!/usr/bin/env bash
# Issue 12's GPU check in ONE command, for a session that is lent a GPU (device tool). It stops itself
# before BUDGET_S seconds (default 560) and leaves in $OUT what it has so far; every phase writes as it goes.
# NOT yet run on a GPU: prepared and smoke-tested on a CPU with --quick (no GPU was lent to the session that
# wrote it). The bench path imports no datasets/mediapipe/imagehash (the GPU machine has none of them).
#
# Here, once (the store travels with `carry`, ~16 MB; its build needs this machine's venv):
#   echo /.speedstore/ >> .git/info/exclude
#   .venv/bin/python -m perf.speed_store .speedstore --n 2000
# On the GPU machine (python3 with torch 2.11, torchvision 0.26, numpy, pillow, scikit-learn, scipy, matplotlib):
#   run(command="bash perf/gpu_check.sh .speedstore/data", carry=[".speedstore"], timeout_s=600)
#
# Phases, most important first (each under `timeout -s INT` for the time left, so it ends cleanly):
# 1. the real thesis grid, 10 configs x 3 seeds x 80 epochs, --no-pretrained, timed end to end
#    (goal: <= 150 s; was ~520 s). Its rows are in grid/results.jsonl as they finish; a grid cut short
#    writes results.md marked INTERRUPTED.
# 2. per model: lrfp's loop vs the plain ImageFolder + DataLoader (8 workers) + PIL fp32 loop, alternating
#    epochs, and the grid extrapolated both ways (goal: lrfp >= 8x the DataLoader grid).
# 3. per model: lrfp's loop vs the bare step on tensors in memory; 3 seeds stacked (torch.func) vs one after
#    another; the same with torch.compile reduce-overhead (CUDA graphs). Both are opt-in in lrfp bench until
#    these figures say they pay.
# 4. (if time is left; put it first with PHASES in a second session) the grid again with --stack-seeds.
set -uo pipefail
STORE=${1:?usage: gpu_check.sh STORE_DIR [--quick]}
MODE=${2:-}
OUT=${OUT:-gpu-check}
BUDGET_S=${BUDGET_S:-560}
PHASES=${PHASES:-grid compare overhead compile grid_stacked}  # a subset, e.g. PHASES="grid_stacked overhead"
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/log.txt"; }
phase() {  # phase NAME MIN_SECONDS CMD...: run CMD with the time left (minus a margin), output to $OUT/NAME.log
    local name=$1 need=$2; shift 2
    [[ " $PHASES " == *" $name "* ]] || { log "skip $name: not in PHASES"; return 0; }
    local t=$(( $(left) - 15 ))
    if (( t < need )); then log "skip $name: ${t}s left, it needs ${need}s"; return 0; fi
    log "start $name (limit ${t}s): $*"
    timeout -s INT -k 10 "$t" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    grep -v '━' "$OUT/$name.log" | tail -n 40 > "$OUT/$name.tail.txt"
    log "end $name: exit $rc$([[ $rc == 124 || $rc == 130 ]] && echo ' (stopped at its time limit: partial)')"
}

if [[ "$MODE" == "--quick" ]]; then  # a smoke test of this script on any machine: tiny, on the CPU
    DEV=(--device cpu); PROTO=quick; WORKERS=2; EPOCHS=1; MODELS=(--model model3); SEEDS=1
    OVER=(--model model3 --size 32 --batches 2 --rounds 1 --precision fp32 --stacked 2)
    COMPILE=()
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    DEV=(--device cuda); PROTO=thesis; WORKERS=8; EPOCHS=2; MODELS=(); SEEDS=3
    OVER=(--model model3 --model model1-bn --model model2-bcn_ws --model resnet18 --sizes thesis --batches 20 --rounds 3
          --precision bf16 --stacked 3)
    COMPILE=(--model model3 --model model1-bn --sizes thesis --batches 20 --rounds 3 --precision bf16 --compile reduce-overhead)
fi
"$PY" -c "import torch, torchvision, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/log.txt"

GRID="$OUT/grid"  # results.md/.csv/.jsonl come back; the checkpoints (VGG-16 ~0.5 GB) are deleted below
G0=$(date +%s)
phase grid 60 "$PY" -m perf.train_speed -d "$STORE" --protocol "$PROTO" "${DEV[@]}" "${MODELS[@]}" --seeds "$SEEDS" \
    --grid-only --grid-out "$GRID" --out "$OUT/grid.json"
log "grid wall $(( $(date +%s) - G0 ))s, rows: $(wc -l < "$GRID/results.jsonl" 2>/dev/null || echo 0)"
rm -rf "$GRID/checkpoints"

phase compare 90 "$PY" -m perf.train_speed -d "$STORE" --protocol "$PROTO" "${DEV[@]}" "${MODELS[@]}" --seeds "$SEEDS" \
    --workers "$WORKERS" --epochs "$EPOCHS" --out "$OUT/compare.json"

phase overhead 60 "$PY" -m perf.loop_overhead "${DEV[@]}" "${OVER[@]}" --out "$OUT/overhead.json"
if (( ${#COMPILE[@]} )); then
    phase compile 90 "$PY" -m perf.loop_overhead "${DEV[@]}" "${COMPILE[@]}" --out "$OUT/compile.json"
fi
GRID="$OUT/grid_stacked"
phase grid_stacked 120 "$PY" -m perf.train_speed -d "$STORE" --protocol "$PROTO" "${DEV[@]}" "${MODELS[@]}" --seeds "$SEEDS" \
    --grid-only --stack-seeds --grid-out "$GRID" --out "$OUT/grid_stacked.json"
rm -rf "$GRID/checkpoints"
# the per-model JSON lines of every phase, in one file (they are also in each phase's log)
grep -h '^{"config' "$OUT"/*.log > "$OUT/rows.jsonl" 2>/dev/null || true
log "done in $(( $(date +%s) - START ))s; files: $(ls "$OUT" | tr '\n' ' ')"
