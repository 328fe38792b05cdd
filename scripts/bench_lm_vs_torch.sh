#!/usr/bin/env bash
# Sequence models (char Transformer and LSTM), normlab vs PyTorch training tokens/s, back to
# back with the same thread count on this machine, printed as speed ratios.
#   scripts/bench_lm_vs_torch.sh                  # 2 threads (THREADS=1 for one), ~1 min
#   REPEATS=3 BUDGET=2 scripts/bench_lm_vs_torch.sh
#   BASE=/path/to/other/build scripts/bench_lm_vs_torch.sh   # adds a "before" normlab column
# PyTorch: scripts/bench_torch.py lm (Transformer LN/RMS, LSTM, GRU of
# scripts/torch_models.py) with Debian's torch via /usr/bin/python3 and the OpenMP OpenBLAS
# (installed, or unpacked from libopenblas0-openmp below; LD_LIBRARY_PATH only for that run). normlab:
# `normlab_bench lm` from BUILD (default build, as scripts/build.sh makes it). The two alternate REPEATS times
# (torch, normlab, torch, normlab, ...) and each side's median over its runs is compared, so
# a slow spell of the shared machine does not decide the ratio.
# ratio = normlab tokens/s / PyTorch tokens/s (> 1: normlab faster).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-$root/build}"
threads="${THREADS:-2}"
repeats="${REPEATS:-2}"
budget="${BUDGET:-1.5}"
only="${ONLY:-transformer,lstm,gru}"
out="${OUT:-${TMPDIR:-/tmp}/normlab-lm-bench}"
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
cmake --build "$build" -j2 --target normlab_bench >/dev/null
# PyTorch gets the OpenBLAS core normlab runs with (normlab chooses one when OpenBLAS falls back
# to a generic core on a CPU it does not know; a value the caller set wins for both sides).
core="$("$build/normlab_bench" info | sed -n 's/.* blas=\([A-Za-z0-9]*\).*/\1/p')"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-$core}"
echo "threads=$threads repeats=$repeats budget=${budget}s OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$out"/torch.*.txt "$out"/normlab.*.txt "$out"/base.*.txt
for r in $(seq 1 "$repeats"); do
  LD_LIBRARY_PATH="$ob" OMP_NUM_THREADS="$threads" /usr/bin/python3 "$root/scripts/bench_torch.py" lm \
    --threads "$threads" --budget "$budget" > "$out/torch.$r.txt"
  OMP_NUM_THREADS="$threads" "$build/normlab_bench" lm --threads "$threads" --budget "$budget" --only "$only" \
    > "$out/normlab.$r.txt"
  if [ -n "${BASE:-}" ]; then
    OMP_NUM_THREADS="$threads" "$BASE/normlab_bench" lm --threads "$threads" --budget "$budget" --only "$only" \
      > "$out/base.$r.txt"
  fi
  echo "  run $r done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" "$repeats" "${BASE:+1}" <<'PY'
import statistics, sys
out, repeats, has_base = sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "1"
def rows(path):  # "<title padded to 48> tokens/s step_ms range params"
    res = {}
    for line in open(path):
        f = line[48:].split()
        if len(f) == 4 and f[0].isdigit():
            res[line[:48].strip()] = float(f[1])
    return res
def med(side):
    runs = [rows(f"{out}/{side}.{r}.txt") for r in range(1, repeats + 1)]
    return {k: statistics.median(run[k] for run in runs if k in run) for k in runs[0]}
t, n = med("torch"), med("normlab")
b = med("base") if has_base else {}
tok = lambda ms: 1024 / ms * 1e3
cols = f"{'torch ms':>9s} " + (f"{'before ms':>9s} " if b else "") + f"{'normlab ms':>10s} {'torch tok/s':>11s} "
cols += (f"{'before tok/s':>12s} " if b else "") + f"{'normlab tok/s':>13s} " + (f"{'before ratio':>12s} " if b else "") + f"{'ratio':>6s}"
print(f"\n{'model':48s} " + cols)
for k, nms in n.items():
    tms, bms = t.get(k), b.get(k)
    cell = lambda v, w, f: (f"{v:{w}{f}}" if v is not None else f"{'-':>{w}s}")
    line = f"{k:48s} {cell(tms, 9, '.2f')} " + (f"{cell(bms, 9, '.2f')} " if b else "") + f"{nms:10.2f} "
    line += f"{cell(tok(tms) if tms else None, 11, '.0f')} " + (f"{cell(tok(bms) if bms else None, 12, '.0f')} " if b else "")
    line += f"{tok(nms):13.0f} "
    if b:
        line += f"{cell(tms / bms if tms and bms else None, 12, '.2f')} "
    line += cell(tms / nms if tms else None, 6, ".2f")
    print(line)
print("step ms: median over runs of each run's median step; ratio = normlab tokens/s / PyTorch tokens/s"
      + ("; before = BASE build" if b else ""))
PY
