#!/usr/bin/env bash
# Before device time is spent: the GPU machine's Python packages, on this CPU. The device's python3 has torch
# 2.11 and torchvision 0.26 and none of datasets, mediapipe, imagehash, textual or yt-dlp (the device tool's
# KINDS.md); lrfp's own install has torch 2.14.1. This builds a virtual environment like the device's (less
# the GPU, and on this machine's Python 3.11 where the device has 3.12), then runs the bench tests and
# `gpu_check.sh --quick` in it: a torch API that 2.11 lacks, or a heavy import on the bench path, fails here.
# It downloads torch 2.11's CUDA build from PyPI (~3 GB with its nvidia-* packages; ~2 minutes here).
#
#   bash perf/gpu_env_check.sh STORE_DIR [VENV_DIR]
# STORE_DIR: a store for the --quick grid, e.g. from `.venv/bin/python -m perf.speed_store /tmp/speed --n 300`
# (its build needs lrfp's own environment) -> /tmp/speed/data.
# Tests that need datasets or imagehash (publish, split, the Hub) are skipped there, and say so.
set -euo pipefail
STORE=${1:?usage: gpu_env_check.sh STORE_DIR [VENV_DIR]}
VENV=${2:-/tmp/lrfp-gpu-env}
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q torch==2.11.0 torchvision==0.26.0 numpy pillow scikit-learn scipy matplotlib \
        typer rich pyyaml opencv-python-headless pytest pytest-asyncio
fi
export PYTHONPATH=$PWD
"$VENV/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
for m in datasets mediapipe imagehash textual yt_dlp; do  # the GPU machine has none of them: neither may this one
    if "$VENV/bin/python" -c "import $m" 2>/dev/null; then echo "error: $VENV has $m; the GPU machine has not" >&2; exit 2; fi
done
"$VENV/bin/python" -m pytest -q -rs -m "not network and not gpu" -p no:cacheprovider tests/test_bench_*.py
OUT=$(mktemp -d) PYTHON="$VENV/bin/python" bash perf/gpu_check.sh "$STORE" --quick
