#!/usr/bin/env bash
# The GPU work, each part one device call on one GPU (each needs most of a session's 15 minutes of
# device time: one part per session). Before calling, once:
#   mkdir -p data && cp ../shared/datasets/cifar10-train.tar.gz data/    (data/ is git-ignored)
# then run through the device tool with carry ["data/cifar10-train.tar.gz"], naming the commit
# (the device gets the working tree, not .git):
#   LRLAB_COMMIT=$(git rev-parse --short HEAD) bash benchmarks/gpu.sh checks
#                                   throughput (bare, common recipe, lrlab eager, printed before
#                                   compiling; then compiled), then time to 91 % validation accuracy,
#                                   compiled (eager if compilation failed); under 10 minutes in all
#   LRLAB_COMMIT=... bash benchmarks/gpu.sh study
#                                   the CIFAR-10 study, configs/cifar10-study.toml, stopped at 540 s
#                                   (finished runs kept), its report built from the runs that finished
# Logs land in $OUT; the study comes back as $OUT/study.tgz (the device returns at most 8 files, two
# folders deep at most). Every time limit sends SIGTERM, then SIGKILL 10 s later (-k 10).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
[ -s data/cifar10-train.tar.gz ] || { echo "data/cifar10-train.tar.gz is missing: carry it (see the top of $0)" >&2; exit 3; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo "${LRLAB_COMMIT:-unknown}")"
  echo "command: bash benchmarks/gpu.sh $*"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
} 2>&1 | tee "$OUT/gpu.txt"
case "${1:-}" in
  checks)
    # each part under a time limit (a hang or a slow compile in one still leaves the other's figures), all of
    # it within 585 s (a device call runs for at most 600); throughput: bare, lrlab, common recipe, fast path
    # unfused/fused, compiled; host syncs; a kernel profile
    start=$SECONDS
    timeout -k 10 330 python3 benchmarks/throughput.py --device cuda --data data/cifar10-train.tar.gz --images 20000 \
      --seconds 10 --compile --profile "$OUT/profile.txt" 2>&1 | tee "$OUT/throughput.txt" || true
    tta=(python3 benchmarks/time_to_accuracy.py --data data/cifar10-train.tar.gz --target 0.91 --epochs 16)
    compiled=1  # a compiler that already failed in the throughput run is not tried a second time
    if grep -q "^torch.compile failed" "$OUT/throughput.txt"; then compiled=0; : >"$OUT/time_to_accuracy.txt"; fi
    if ((compiled)) && timeout -k 10 $((575 - (SECONDS - start))) "${tta[@]}" --compile 2>&1 | tee "$OUT/time_to_accuracy.txt"; then
      :
    else
      left=$((575 - (SECONDS - start)))  # compilation failed early: eager (about 100 s of training), if it fits
      if ((left > 150)); then
        echo "== compiled run failed or skipped; eager, within $left s ==" | tee -a "$OUT/time_to_accuracy.txt"
        timeout -k 10 $left "${tta[@]}" 2>&1 | tee -a "$OUT/time_to_accuracy.txt" || true
      fi
    fi
    echo; echo "== summary =="
    grep -E "^(ratio|host syncs|GoogLeNet|lrlab|common|bare|torch.compile failed)" "$OUT/throughput.txt" || true
    grep -E "^(time to|final|NVIDIA|.*one-cycle|== compiled run failed)" "$OUT/time_to_accuracy.txt" || true
    cat "$OUT/gpu.txt"
    ;;
  study)
    # --compile: compiled once per process (later runs reuse it), about a third faster per step in the design
    # notes' measurement; if compilation fails on the card, the same command without it keeps the finished
    # runs and trains the rest eager (compilation is not part of a run's identity). Runs go seed by seed, so
    # a study stopped by the time limit keeps whole seeds of every schedule; `lrlab report` then reports them.
    start=$SECONDS limit=${STUDY_LIMIT:-540}  # (a smaller limit rehearses the time-out on a CPU)
    dir=/tmp/cifar10-study
    study=(python3 -m lrlab study configs/cifar10-study.toml --device cuda --out "$dir" --no-progress)
    if ! timeout -k 10 "$limit" "${study[@]}" --compile 2>&1 | tee "$OUT/study.log"; then
      left=$((limit - (SECONDS - start)))
      if ((left > 60)); then
        echo "== compiled study stopped; going on eager within $left s ==" | tee -a "$OUT/study.log"
        timeout -k 10 $left "${study[@]}" 2>&1 | tee -a "$OUT/study.log" || true
      fi
      python3 -m lrlab report "$dir" 2>&1 | tee -a "$OUT/study.log" || true
    fi
    # without the checkpoints of runs the limit cut short (47 MiB each at full width; a file over 16 MiB does
    # not come back): their finished epochs are in their CSVs
    if [ -d "$dir" ]; then
      tar czf "$OUT/study.tgz" --exclude=checkpoint.pt --exclude=model.pt -C "$(dirname "$dir")" "$(basename "$dir")"
    fi
    ls -l "$OUT"
    ;;
  *) echo "usage: bash benchmarks/gpu.sh checks|study" >&2; exit 2 ;;
esac
