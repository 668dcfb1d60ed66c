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
# Phases, in this order (each under `timeout -s INT` for the time left, so it ends cleanly; PHASES picks some):
# 1. overhead_graph, overhead: per config (five that span the grid, thesis sizes, bf16), lrfp's loop vs the bare step on
#    tensors in memory, 3 seeds stacked (torch.func) vs one after another, and the bare step with the
#    first convolution in NCHW vs all channels-last; first with every step replayed as a CUDA graph
#    (--cuda-graph), then eagerly. Estimated at one to two minutes each (never timed on a GPU): they say
#    which of the opt-in paths pays, per model, before the grids spend the rest. Each keeps time for the grids
#    (380 s and 330 s of the 560): stopped early if slow, they leave grid_graph at least 180 s whatever happens.
# 2. grid_graph: the real thesis grid, 10 configs x 3 seeds x 80 epochs, --no-pretrained, with
#    `--cuda-graph --stack-seeds` (the two opt-in paths together), timed end to end (goal: <= 150 s); it
#    keeps 150 s for the phases after it, so a slow one is stopped and reported partial.
# 3. grid: the same grid with the defaults (was ~520 s; keeps 60 s for compare). Rows are in grid*/results.jsonl as they finish;
#    a grid cut short writes results.md marked INTERRUPTED.
# 4. compare: per model, lrfp's loop vs the plain ImageFolder + DataLoader (8 workers) + PIL fp32 loop,
#    one timed epoch each after a warm-up, and the grid extrapolated both ways (goal: lrfp >= 8x the DataLoader grid).
# 5. compile, grid_stacked: torch.compile reduce-overhead per model; the grid with --stack-seeds alone.
# A second session runs what the first had no time for, e.g. PHASES="grid compare"; with
# RESUME_FROM=DIR (the first session's returned $OUT, carried in) a grid cut short continues where it stopped.
set -uo pipefail
STORE=${1:?usage: gpu_check.sh STORE_DIR [--quick]}
MODE=${2:-}
OUT=${OUT:-gpu-check}
BUDGET_S=${BUDGET_S:-560}
PHASES=${PHASES:-overhead_graph overhead grid_graph grid compare compile grid_stacked}  # a subset, e.g. PHASES="grid compare"
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/log.txt"; }
phase() {  # phase NAME MIN_SECONDS RESERVE_SECONDS CMD...: run CMD with the time left minus RESERVE (kept for
           # the later phases) minus a margin; output to $OUT/NAME.log. Sets RAN=1 if it ran.
    local name=$1 need=$2 reserve=$3; shift 3
    RAN=0
    [[ " $PHASES " == *" $name "* ]] || { log "skip $name: not in PHASES"; return 0; }
    local t=$(( $(left) - 15 - reserve ))
    if (( t < need )); then log "skip $name: ${t}s left after the ${reserve}s kept for later phases, it needs ${need}s"; return 0; fi
    log "start $name (limit ${t}s): $*"
    RAN=1
    timeout -s INT -k 10 "$t" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    grep -v '━' "$OUT/$name.log" | tail -n 40 > "$OUT/$name.tail.txt"
    log "end $name: exit $rc$([[ $rc == 124 || $rc == 130 ]] && echo ' (stopped at its time limit: partial)')"
}

if [[ "$MODE" == "--quick" ]]; then  # a smoke test of this script on any machine: tiny, on the CPU
    DEV=(--device cpu); PROTO=quick; WORKERS=2; EPOCHS=1; MODELS=(--model model3); SEEDS=1
    OVER=(--model model3 --size 32 --batches 2 --rounds 1 --precision fp32 --stacked 2 --first-conv-nchw)
    COMPILE=(); GRAPH=()  # CUDA graphs need a GPU: the graph phases are skipped here
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    DEV=(--device cuda); PROTO=thesis; WORKERS=8; EPOCHS=1; MODELS=(); SEEDS=3
    # five configs that span the grid (launch-bound Model 3 to compute-bound VGG-16), to keep the phase short
    OVER=(--model model3 --model model1-bn --model model2-bcn_ws --model resnet18 --model vgg16 --sizes thesis
          --batches 20 --rounds 3 --precision bf16 --stacked 3 --first-conv-nchw)
    GRAPH=(--cuda-graph)
    COMPILE=(--model model3 --model model1-bn --sizes thesis --batches 20 --rounds 3 --precision bf16 --compile reduce-overhead)
fi
"$PY" -c "import torch, torchvision, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/log.txt"

if (( ${#GRAPH[@]} )); then
    phase overhead_graph 45 380 "$PY" -m perf.loop_overhead "${DEV[@]}" "${OVER[@]}" "${GRAPH[@]}" --out "$OUT/overhead_graph.json"
else
    log "skip overhead_graph: CUDA graphs need a GPU"
fi
phase overhead 45 330 "$PY" -m perf.loop_overhead "${DEV[@]}" "${OVER[@]}" --out "$OUT/overhead.json"

grid() {  # grid PHASE_NAME RESERVE_SECONDS EXTRA_FLAGS...: the thesis grid, timed; results.md/.csv/.jsonl come back
    local name=$1 reserve=$2; shift 2
    # a grid an earlier session left unfinished continues (lrfp bench resumes from plan.json + results.jsonl)
    if [[ -n "${RESUME_FROM:-}" && -f "$RESUME_FROM/$name/plan.json" && ! -e "$OUT/$name" ]]; then
        cp -r "$RESUME_FROM/$name" "$OUT/$name" && log "$name: resuming the grid in $RESUME_FROM/$name"
    fi
    local G0=$(date +%s)
    phase "$name" 60 "$reserve" "$PY" -m perf.train_speed -d "$STORE" --protocol "$PROTO" "${DEV[@]}" "${MODELS[@]}" \
        --seeds "$SEEDS" --grid-only --grid-out "$OUT/$name" --out "$OUT/$name.json" "$@"
    if (( RAN )); then
        log "$name wall $(( $(date +%s) - G0 ))s, rows: $(wc -l 2>/dev/null < "$OUT/$name/results.jsonl" || echo 0)"
    fi
    rm -rf "$OUT/$name/checkpoints"  # VGG-16's is ~0.5 GB
}
# the opt-in paths first (a grid that meets the goal ends well inside its share), then the defaults; each grid
# leaves time for what follows it, so that one session gets a figure of every phase, partial or whole
if (( ${#GRAPH[@]} )); then
    grid grid_graph 150 "${GRAPH[@]}" --stack-seeds
else
    log "skip grid_graph: CUDA graphs need a GPU"
fi
grid grid 60

phase compare 45 0 "$PY" -m perf.train_speed -d "$STORE" --protocol "$PROTO" "${DEV[@]}" "${MODELS[@]}" --seeds "$SEEDS" \
    --workers "$WORKERS" --epochs "$EPOCHS" --out "$OUT/compare.json"
if (( ${#COMPILE[@]} )); then
    phase compile 90 0 "$PY" -m perf.loop_overhead "${DEV[@]}" "${COMPILE[@]}" --out "$OUT/compile.json"
fi
grid grid_stacked 0 --stack-seeds
# the per-model JSON lines of every phase, in one file (they are also in each phase's log)
grep -h '^{"config' "$OUT"/*.log > "$OUT/rows.jsonl" 2>/dev/null || true
log "done in $(( $(date +%s) - START ))s; files: $(ls "$OUT" | tr '\n' ' ')"
