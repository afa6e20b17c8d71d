#!/usr/bin/env bash
# The GPU work, each part one device call on one GPU. Before calling, once:
#   mkdir -p data && cp ../shared/datasets/cifar10-train.tar.gz data/    (data/ is git-ignored)
# then run through the device tool with carry ["data/cifar10-train.tar.gz"]:
#   bash benchmarks/gpu.sh checks   throughput (common recipe vs lrlab, eager and compiled), then
#                                   time to 91 % validation accuracy, compiled (eager if compilation
#                                   fails); under 10 minutes in all
#   bash benchmarks/gpu.sh study    the CIFAR-10 study, configs/cifar10-study.toml (under 10 minutes)
# Logs and the study's report land in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
case "${1:-}" in
  checks)
    # each part under a time limit (a hang or a slow compile in one still leaves the other's figures), all of
    # it within 585 s (a device call runs for at most 600); throughput: bare, lrlab, common recipe, fast path
    # unfused/fused, compiled; host syncs; a kernel profile
    start=$SECONDS
    timeout 330 python3 benchmarks/throughput.py --device cuda --data data/cifar10-train.tar.gz --images 20000 \
      --seconds 10 --compile --profile "$OUT/profile.txt" 2>&1 | tee "$OUT/throughput.txt" || true
    tta=(python3 benchmarks/time_to_accuracy.py --data data/cifar10-train.tar.gz --target 0.91 --epochs 16)
    if ! timeout $((585 - (SECONDS - start))) "${tta[@]}" --compile 2>&1 | tee "$OUT/time_to_accuracy.txt"; then
      left=$((585 - (SECONDS - start)))  # compilation failed early: eager (about 100 s of training), if it fits
      if ((left > 150)); then
        echo "== compiled run failed; eager, within $left s ==" | tee -a "$OUT/time_to_accuracy.txt"
        timeout $left "${tta[@]}" 2>&1 | tee -a "$OUT/time_to_accuracy.txt" || true
      fi
    fi
    echo; echo "== summary =="
    grep -E "^(ratio|host syncs|GoogLeNet|lrlab|common|bare|torch.compile failed)" "$OUT/throughput.txt" || true
    grep -E "^(time to|final|NVIDIA|.*one-cycle|== compiled run failed)" "$OUT/time_to_accuracy.txt" || true
    ;;
  study)
    # --compile: compiled once per process (later runs reuse it), about a third faster per step in the design
    # notes' measurement; if compilation fails on the card, the same command without it keeps the finished
    # runs and trains the rest eager (compilation is not part of a run's identity; the study is sized for 10
    # minutes eager)
    study=(python3 -m lrlab study configs/cifar10-study.toml --device cuda --out "$OUT/cifar10-study" --no-progress)
    if ! "${study[@]}" --compile 2>&1 | tee "$OUT/study.log"; then
      echo "== compiled study failed; going on eager ==" | tee -a "$OUT/study.log"
      "${study[@]}" 2>&1 | tee -a "$OUT/study.log"
    fi
    ;;
  *) echo "usage: bash benchmarks/gpu.sh checks|study" >&2; exit 2 ;;
esac
