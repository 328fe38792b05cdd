#!/usr/bin/env bash
# CNN training throughput, normlab vs PyTorch, on the MNIST and CIFAR CNNs of
# /work/shared/ref/torch_train_bench.py, printed as images/s ratios (> 1: normlab faster).
#   scripts/bench_train_vs_torch.sh                   # 1 and 2 threads, ~4 min
#   THREADS=2 BUDGET=0.3 scripts/bench_train_vs_torch.sh
# For each thread count: PyTorch sweep, normlab sweep (`normlab_bench train` from BUILD,
# default build, as scripts/build.sh makes it), PyTorch sweep again. The machine is shared, so the ratio uses the
# mean of the two PyTorch sweeps around the normlab one, and "range" shows the ratio against
# each of them. PyTorch runs with the OpenMP OpenBLAS (see /work/shared/ref/README.md).
# On a busy shared machine run 2 threads with OMP_WAIT_POLICY=passive (both sides inherit it):
# libgomp's default spinning at barriers makes every step wait for descheduled threads, and
# both frameworks' numbers swing 10-400x (docs/performance.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ref=/work/shared/ref
build="${BUILD:-$root/build}"
budget="${BUDGET:-0.5}"
out="${OUT:-${TMPDIR:-/tmp}/normlab-train-bench}"
ob="${OPENBLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-openmp}"
mkdir -p "$out"
cmake --build "$build" -j2 --target normlab_bench >/dev/null
for threads in ${THREADS:-1 2}; do
  echo "== $threads thread(s), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  torch() {
    LD_LIBRARY_PATH="$ob" OMP_NUM_THREADS="$threads" /usr/bin/python3 "$ref/torch_train_bench.py" \
      --threads "$threads" --budget "$budget" --only mnist,cifar > "$1"
  }
  torch "$out/torch_before_$threads.txt"
  OMP_NUM_THREADS="$threads" "$build/normlab_bench" train --budget "$budget" > "$out/normlab_$threads.txt"
  torch "$out/torch_after_$threads.txt"
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/python3 - "$out/torch_before_$threads.txt" "$out/torch_after_$threads.txt" "$out/normlab_$threads.txt" <<'PY'
import sys
names = {"none": "none", "BatchNorm2d": "bn", "GroupNorm(8)": "gn", "InstanceNorm2d(affine)": "in", "LayerNorm(C,H,W)": "ln"}
def torch_rows(path):
    res, model, batches = {}, None, []
    for line in open(path):
        if line.startswith("== MNIST"): model = "mnist"
        elif line.startswith("== CIFAR"): model = "cifar"
        elif line.startswith("norm "): batches = [int(c[3:]) for c in line.split("|")[0].split()[1:]]
        elif model and line.split() and line.split()[0] in names:
            f = line.split()
            for b, v in zip(batches, f[1:1 + len(batches)]):
                res[(model, names[f[0]], b)] = float(v)
    return res
before, after = torch_rows(sys.argv[1]), torch_rows(sys.argv[2])
nl = {}
for line in open(sys.argv[3]):
    f = line.split()
    if len(f) == 6 and f[0] == "train" and f[1] != "model":
        nl[(f[1], f[2], int(f[3]))] = float(f[4])
batches = sorted({k[2] for k in nl})
print(f"   {'model':6s} {'norm':5s} " + " ".join(f"{'bs=' + str(b):>16s}" for b in batches)
      + "   (ratio = normlab images/s / mean PyTorch images/s [vs before..after])")
for model in ("mnist", "cifar"):
    for norm in ("none", "bn", "gn", "in", "ln"):
        cells = []
        for b in batches:
            k = (model, norm, b)
            if k in nl and k in before and k in after:
                t = 0.5 * (before[k] + after[k])
                lo, hi = sorted((nl[k] / before[k], nl[k] / after[k]))
                cells.append(f"{nl[k] / t:5.2f} [{lo:.2f}..{hi:.2f}]")
            else:
                cells.append("-")
        print(f"   {model:6s} {norm:5s} " + " ".join(f"{c:>16s}" for c in cells))
print("   images/s normlab:  " + "  ".join(f"{k[0]}/{k[1]}/{k[2]}={v:.0f}" for k, v in nl.items() if k[2] in (2, 128)))
PY
done
