#!/usr/bin/env bash
# Norm layers, normlab vs PyTorch, back to back on this machine, printed as speed ratios.
#   scripts/bench_norms_vs_torch.sh                 # 2 threads (THREADS=1 for one), ~3 min
#   QUICK=1 scripts/bench_norms_vs_torch.sh         # short budgets, noisier
# PyTorch: scripts/bench_torch.py norms (the same layers and shapes) with Debian's torch via
# /usr/bin/python3 and the OpenMP OpenBLAS (installed, or unpacked from libopenblas0-openmp below)
# (LD_LIBRARY_PATH only for that run). normlab: `normlab_bench norms` from BUILD (default build, as scripts/build.sh makes it). Both use default
# glibc malloc. ratio = normlab speed / PyTorch speed = torch time / normlab time (> 1: faster).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-$root/build}"
threads="${THREADS:-2}"
out="${OUT:-${TMPDIR:-/tmp}/normlab-norm-bench}"
mkdir -p "$out"
libs="${REF_LIB_DIR:-${TMPDIR:-/tmp}/normlab-ref-libs}"
ob="$libs/usr/lib/x86_64-linux-gnu/openblas-openmp"
if [ ! -e "$ob/libblas.so.3" ] && [ -e /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 ]; then
  ob=/usr/lib/x86_64-linux-gnu/openblas-openmp
elif [ ! -e "$ob/libblas.so.3" ]; then
  mkdir -p "$libs/debs"
  (cd "$libs/debs" && apt-get download libopenblas0-openmp >/dev/null)
  dpkg -x "$libs"/debs/libopenblas0-openmp_*.deb "$libs"
fi
if [ -n "${QUICK:-}" ]; then tq=(--budget 0.05); nq=(--quick); else tq=(--budget 0.4); nq=(); fi
cmake --build "$build" -j2 --target normlab_bench >/dev/null
# PyTorch gets the OpenBLAS core normlab runs with (normlab chooses one when OpenBLAS falls back
# to a generic core on a CPU it does not know; a value the caller set wins for both sides).
core="$("$build/normlab_bench" info | sed -n 's/.* blas=\([A-Za-z0-9]*\).*/\1/p')"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-$core}"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "[1/2] PyTorch ($threads threads)"
LD_LIBRARY_PATH="$ob" OMP_NUM_THREADS="$threads" /usr/bin/python3 "$root/scripts/bench_torch.py" norms --threads "$threads" "${tq[@]}" \
  | tee "$out/torch.txt"
echo "[2/2] normlab ($threads threads)"
OMP_NUM_THREADS="$threads" "$build/normlab_bench" norms --threads "$threads" "${nq[@]}" | tee "$out/normlab.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out/torch.txt" "$out/normlab.txt" <<'PY'
import re, sys
def rows(path, torch):
    res = {}
    for line in open(path):
        if len(line) < 45 or not re.match(r"^[A-Z]", line) or line.startswith(("layer", "==")):
            continue
        layer, shape = line[:24].strip(), line[25:43].strip()
        f = line[43:].split()
        try:
            if torch:   # norm fwd f+b GB/s
                res[(layer, shape)] = (float(f[1]), float(f[2]))
            else:       # norm fwd f+b GB/s cpyGB/s %copy
                res[(layer, shape)] = (float(f[1]), float(f[2]), float(f[3]), float(f[5].rstrip("%")))
        except (ValueError, IndexError):
            pass
    return res
t, n = rows(sys.argv[1], True), rows(sys.argv[2], False)
print()
print(f"{'layer':24s} {'shape':18s} {'torch f+b us':>12s} {'normlab f+b us':>14s} {'ratio f+b':>9s} {'ratio fwd':>9s} {'normlab %copy':>13s}")
for key, (nf, nfb, gb, pc) in n.items():
    if key not in t:
        continue
    tf, tfb = t[key]
    print(f"{key[0]:24s} {key[1]:18s} {tfb:12.1f} {nfb:14.1f} {tfb / nfb:9.2f} {tf / nf:9.2f} {pc:12.0f}%")
print("ratio = PyTorch time / normlab time (normlab speed / PyTorch speed); %copy = normlab f+b GB/s / memcpy GB/s at that size")
PY
