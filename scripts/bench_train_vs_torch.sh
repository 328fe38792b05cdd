#!/usr/bin/env bash
# CNN training throughput, normlab vs PyTorch, on the MNIST and CIFAR CNNs (PyTorch side:
# scripts/bench_torch.py images, models in scripts/torch_models.py), printed as images/s
# ratios (> 1: normlab faster).
#   scripts/bench_train_vs_torch.sh                   # 1 and 2 threads, ~4 min
#   THREADS=2 BUDGET=0.3 scripts/bench_train_vs_torch.sh
#   ONLY=resnet20 NORMS=bn BATCHES=2,32 scripts/bench_train_vs_torch.sh   # ResNet-20 (not in the default)
#   REPEATS=3 ONLY=resnet20 BATCHES=32,128 THREADS=1 scripts/bench_train_vs_torch.sh
# For each thread count: PyTorch sweep, normlab sweep (`normlab_bench train` from BUILD,
# default build, as scripts/build.sh makes it), PyTorch sweep again; with REPEATS=R, R normlab
# sweeps each between two PyTorch ones (R + 1 of them). The ratio is normlab's median over its
# sweeps against PyTorch's (with one normlab sweep: against the mean of the two around it), and
# the range shows each normlab sweep against each PyTorch sweep next to it: a slow spell on one
# side shows as a wide range, and with REPEATS >= 3 it no longer decides the ratio. PyTorch runs with the OpenMP OpenBLAS (OPENBLAS_DIR; Debian's default pthread
# OpenBLAS spins against OpenMP threads and makes PyTorch 2-4x slower on 2 cores).
# On a busy shared machine run 2 threads with OMP_WAIT_POLICY=passive (both sides inherit it):
# libgomp's default spinning at barriers makes every step wait for descheduled threads, and
# both frameworks' numbers swing 10-400x (docs/performance.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-$root/build}"
budget="${BUDGET:-0.5}"
sel=(--only "${ONLY:-mnist,cifar}" --norms "${NORMS:-none,bn,gn,in,ln}" --batches "${BATCHES:-2,8,32,128}")
out="${OUT:-${TMPDIR:-/tmp}/normlab-train-bench}"
ob="${OPENBLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-openmp}"
mkdir -p "$out"
cmake --build "$build" -j2 --target normlab_bench >/dev/null
# PyTorch gets the OpenBLAS core normlab runs with (normlab chooses one when OpenBLAS falls back
# to a generic core on a CPU it does not know; a value the caller set wins for both sides).
core="$("$build/normlab_bench" info | sed -n 's/.* blas=\([A-Za-z0-9]*\).*/\1/p')"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-$core}"
for threads in ${THREADS:-1 2}; do
  echo "== $threads thread(s), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default}, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  torch() {
    LD_LIBRARY_PATH="$ob" OMP_NUM_THREADS="$threads" /usr/bin/python3 "$root/scripts/bench_torch.py" images \
      --threads "$threads" --budget "$budget" "${sel[@]}" > "$1"
  }
  repeats="${REPEATS:-1}"
  torch "$out/torch_${threads}_0.txt"
  for r in $(seq "$repeats"); do
    OMP_NUM_THREADS="$threads" "$build/normlab_bench" train --budget "$budget" "${sel[@]}" > "$out/normlab_${threads}_$r.txt"
    torch "$out/torch_${threads}_$r.txt"
  done
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/python3 - "$out" "$threads" "$repeats" <<'PY'
import statistics
import sys
def rows(path):  # "train <model> <norm> <batch> <images/s> <step ms>", both sides
    res = {}
    for line in open(path):
        f = line.split()
        if len(f) == 6 and f[0] == "train" and f[1] != "model":
            res[(f[1], f[2], int(f[3]))] = float(f[4])
    return res
out, threads, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch_runs = [rows(f"{out}/torch_{threads}_{r}.txt") for r in range(repeats + 1)]
nl_runs = [rows(f"{out}/normlab_{threads}_{r}.txt") for r in range(1, repeats + 1)]
nl = {k: statistics.median(run[k] for run in nl_runs) for k in nl_runs[0] if all(k in run for run in nl_runs)}
batches = sorted({k[2] for k in nl})
print(f"   {'model':8s} {'norm':5s} " + " ".join(f"{'bs=' + str(b):>16s}" for b in batches)
      + (f"   (ratio = normlab images/s / mean PyTorch images/s [vs before..after])" if repeats == 1 else
         f"   (ratio = median of {repeats} normlab sweeps / median of {repeats + 1} PyTorch sweeps "
         "[each normlab sweep vs the PyTorch sweeps before and after it])"))
for model in ("mnist", "cifar", "resnet20"):
    for norm in ("none", "bn", "gn", "in", "ln"):
        cells = []
        for b in batches:
            k = (model, norm, b)
            if k in nl and all(k in run for run in torch_runs):
                t = statistics.median(run[k] for run in torch_runs)  # two sweeps: their mean
                pairs = [n[k] / torch_runs[i + d][k] for i, n in enumerate(nl_runs) for d in (0, 1)]
                cells.append(f"{nl[k] / t:5.2f} [{min(pairs):.2f}..{max(pairs):.2f}]")
            else:
                cells.append("-")
        if any(c != "-" for c in cells):
            print(f"   {model:8s} {norm:5s} " + " ".join(f"{c:>16s}" for c in cells))
print("   images/s normlab:  " + "  ".join(f"{k[0]}/{k[1]}/{k[2]}={v:.0f}" for k, v in nl.items() if k[2] in (2, 128)))
PY
done
