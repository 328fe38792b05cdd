#!/usr/bin/env bash
# Profile of `normlab_bench train` for one model, norm, batch size and thread count, and its
# breakdown by category (scripts/perf_breakdown.py): conv forward / input gradient / weight
# gradient, im2col, norm, optimizer, allocation, OpenMP, ...
#   scripts/profile_train.sh cifar bn 32 1           # model (mnist|cifar|resnet20) norm batch threads
#   SECONDS_=10 TOP=5 scripts/profile_train.sh resnet20 bn 32 2
# Needs linux-perf (Debian package); cpu-clock sampling, so it works in VMs without hardware
# counters. Fractions are meaningful on a loaded machine too, except OpenMP's share at 2 threads,
# which grows when the threads wait for each other's cores.
# STACK_BYTES: user stack copied per sample for the dwarf unwinder (default 8192). On the
# Sapphire Rapids guest 16384 and more lost the frames above the kernels in nearly every sample
# (the breakdown then finds no "timed steps"); 8192 keeps all but a few in most runs, not all
# (perf_breakdown.py says so when a profile lost them: run it again).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-$root/build}"
model="$1" norm="$2" batch="$3" threads="$4"
out="${OUT:-${TMPDIR:-/tmp}/normlab-profile}"
mkdir -p "$out"
data="$out/$model-$norm-b$batch-t$threads.data"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS="$threads" perf record -q -F 999 --call-graph "dwarf,${STACK_BYTES:-8192}" -o "$data" \
  "$build/normlab_bench" train --only "$model" --norms "$norm" --batches "$batch" \
  --budget "${SECONDS_:-6}" --max-steps 1000000 | grep "^train" | tail -1
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$root/scripts/perf_breakdown.py" --top "${TOP:-0}" "$data"
