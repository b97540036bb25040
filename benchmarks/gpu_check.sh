#!/usr/bin/env bash
# One-shot GPU check: the GPU-marked tests, then the GPU benchmark; the markdown table is printed last.
#
#   bash benchmarks/gpu_check.sh DATA_DIR OUT_DIR [extra benchmarks.gpu_bench options]
#
# DATA_DIR holds amazon_games/ (interactions.csv + items.csv) and, where the bundled encoder package is not
# installed, all-MiniLM-L6-v2/ (`python -m benchmarks.gpu_bench --prepare DATA_DIR` writes both).
# OUT_DIR receives pytest_gpu.log, gpu_bench.log, gpu_bench.json and gpu_bench.md.
# Whole run: at most TOTAL_S seconds (default 465, inside the 8 minutes an H100 run may take).
set -uo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 DATA_DIR OUT_DIR [benchmarks.gpu_bench options]" >&2
    exit 2
fi
DATA_DIR=$1
OUT_DIR=$2
shift 2
TOTAL_S=${TOTAL_S:-465}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT_DIR"
started=$(date +%s)
export PYTHONUNBUFFERED=1
# Embedding and expert caches go to a scratch folder: nothing of the user's is read or written.
export FOSTER_CACHE_DIR=${FOSTER_CACHE_DIR:-$(mktemp -d)}

ENCODER_ARGS=()
if [ -n "${FOSTER_ENCODER_DIR:-}" ]; then
    ENCODER_ARGS=(--encoder "$FOSTER_ENCODER_DIR")
elif [ -d "$DATA_DIR/all-MiniLM-L6-v2" ]; then
    ENCODER_ARGS=(--encoder "$DATA_DIR/all-MiniLM-L6-v2")
fi

echo "== $(date -u +%FT%TZ) GPU check; $("$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA DEVICE")')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

echo "== GPU-marked tests"
timeout 120 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT_DIR/pytest_gpu.log"
tests_rc=${PIPESTATUS[0]}

left=$(( TOTAL_S - ($(date +%s) - started) ))
budget=$(( left - 25 ))  # the driver's own deadline; `timeout` below is the hard stop
# The driver reads a budget of 0 as "no deadline", and `timeout 0` never stops: a run left with (almost) no
# time keeps a deadline of 1 s and a hard stop of 1 s.
if [ "$budget" -lt 1 ]; then
    budget=1
fi
if [ "$left" -lt 1 ]; then
    left=1
fi
echo "== benchmark (${left} s left, driver budget ${budget} s)"
timeout --kill-after=10 "$left" "$PYTHON" -m benchmarks.gpu_bench --data "$DATA_DIR/amazon_games" \
    ${ENCODER_ARGS[@]+"${ENCODER_ARGS[@]}"} --out "$OUT_DIR" --budget-s "$budget" --no-table "$@" 2>&1 | tee "$OUT_DIR/gpu_bench.log"
bench_rc=${PIPESTATUS[0]}

echo
echo "== summary: tests exit $tests_rc, benchmark exit $bench_rc, $(( $(date +%s) - started )) s in all"
# The table last (written after every section, so a run cut short still shows what it measured).
if [ -f "$OUT_DIR/gpu_bench.md" ]; then
    cat "$OUT_DIR/gpu_bench.md"
fi
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
