#!/usr/bin/env bash
# The CIFAR-10 study (configs/cifar10-study.toml) in one device call on one GPU. Before calling:
#   mkdir -p data && cp ../shared/datasets/cifar10-train.tar.gz data/    (data/ is git-ignored)
# then run through the device tool with carry ["data/cifar10-train.tar.gz"]:
#   bash benchmarks/gpu_study.sh
# The report (report.md, report.html, plots/, summary.csv, every run folder) lands in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m lrlab study configs/cifar10-study.toml --device cuda --out "$OUT/cifar10-study" --no-progress "$@" \
  2>&1 | tee "$OUT/study.log"
