#!/usr/bin/env bash
# The device check of benchmarks/gpu_check.py (scorer and AutoAttack throughput, the AutoAttack
# speed-up over bare pyautoattack, MFU in float32 and bf16). On a lent GPU machine, from the
# repository root:  bash benchmarks/gpu_check.sh          (under 5 minutes on one GPU)
# End to end on CPU:  bash benchmarks/gpu_check.sh --device cpu --model tiny --quick
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" benchmarks/gpu_check.py "$@"
