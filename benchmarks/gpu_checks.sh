#!/usr/bin/env bash
# The speed checks on one GPU, as one device call (about 4 minutes): throughput of the common
# recipe against lrlab's fast path (eager and compiled), then time to 91 % validation accuracy.
# Needs data/cifar10-train.tar.gz (see gpu_study.sh) carried along.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/throughput.py --device cuda --data data/cifar10-train.tar.gz --images 20000 --seconds 15 \
  --compile 2>&1 | tee "$OUT/throughput.txt"
python3 benchmarks/time_to_accuracy.py --data data/cifar10-train.tar.gz --target 0.91 --epochs 10 \
  2>&1 | tee "$OUT/time_to_accuracy.txt"
