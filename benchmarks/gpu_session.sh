#!/usr/bin/env bash
# benchmarks/gpu_check.py as one prepared call on a lent GPU machine, whose image has PyTorch, Accelerate and most
# of the packages' dependencies but no network, no build backend (hatchling) and not rdkit, verovio or captcha.
#
#   bash benchmarks/gpu_session.sh --fetch-wheels    # here: those three as wheels for its Python 3.12, .gpu-wheels/
#   bash benchmarks/gpu_session.sh [gpu_check options]  # there, with .gpu-wheels carried; figures under $OUT
#
# There it installs the wheels, puts every package's src/ on PYTHONPATH (nothing is built), records the GPU and
# the library versions, and runs gpu_check.py within a time budget (BUDGET_S, default 420 s: the runs that do not
# fit are listed as skipped; RUN_TIMEOUT_S, default 150 s, per run), so that one call of at most 10 minutes
# returns what it measured; then scaling_estimate.py turns the measured step times into all-reduce shares.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.gpu-wheels}

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    "${PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" rdkit verovio captcha
    du -sh "$WHEELS"
    exit 0
fi

PYTHON=${PYTHON:-python3}
OUT=${OUT:-runs/gpu-session}
mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    "$PYTHON" -m pip install --quiet --no-deps --no-index "$WHEELS"/*.whl
fi
PYTHONPATH=$(printf '%s:' "$PWD"/packages/*/src)${PYTHONPATH:-}
export PYTHONPATH PYTHONUNBUFFERED=1
{
    if command -v nvidia-smi > /dev/null; then nvidia-smi -L; else echo "nvidia-smi: not found"; fi
    "$PYTHON" -c 'import sys, torch, accelerate; print("python", sys.version.split()[0], "torch", torch.__version__,
"accelerate", accelerate.__version__, "cuda", torch.cuda.is_available() and torch.cuda.get_device_name())'
} | tee "$OUT/environment.txt"
# no run starts after BUDGET_S and none lasts over RUN_TIMEOUT_S: together they end inside a 600 s call
status=0
"$PYTHON" benchmarks/gpu_check.py --budget-s "${BUDGET_S:-420}" --timeout "${RUN_TIMEOUT_S:-150}" \
    --steps "${STEPS:-30}" --warmup "${WARMUP:-8}" --out "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/gpu_check.log" \
    || status=$?
# the all-reduce share of each measured update (slurm/README.md, "Scaling on paper"), also when a variant failed
"$PYTHON" benchmarks/scaling_estimate.py --gpu-check "$OUT/gpu_check.json" --out "$OUT/scaling_estimate.json" \
    | tee "$OUT/scaling_estimate.log"
exit "$status"
