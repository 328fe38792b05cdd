#!/usr/bin/env bash
# A/B of two normlab_bench builds on `normlab_bench train`, for machines whose speed drifts
# (docs/performance.md: a VM's speed can vary 1.4x within a minute): the two builds alternate
# per configuration, the order flips every repeat, and the result is the median over repeats
# of each pair's ratio B/A, so drift slower than one pair cancels.
#   scripts/bench_ab.sh build-a/normlab_bench build-b/normlab_bench
#   REPEATS=8 CONFIGS="cifar:2:1 cifar:2:2 resnet20:32:2" NORM=gn scripts/bench_ab.sh A B
#   ARGS_A="--algorithm direct" scripts/bench_ab.sh build/normlab_bench build/normlab_bench   # one binary, two settings
# CONFIGS: model:batch:threads (models of `normlab_bench train --only`); ARGS_A / ARGS_B: more
# `normlab_bench train` arguments for side A / B.
set -euo pipefail
a="$1" b="$2"
repeats="${REPEATS:-8}" configs="${CONFIGS:-mnist:2:1 mnist:2:2 cifar:2:1 cifar:2:2 cifar:32:2 resnet20:32:2}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "# A = $a ${ARGS_A:-}, B = $b ${ARGS_B:-}; $repeats repeats; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  for c in $configs; do
    IFS=: read -r model batch threads <<< "$c"
    order="A B"; [ $((r % 2)) = 0 ] && order="B A"
    for side in $order; do
      bin="$a" extra="${ARGS_A:-}"
      [ "$side" = B ] && bin="$b" extra="${ARGS_B:-}"
      # shellcheck disable=SC2086  # extra: words to split
      v=$(OMP_NUM_THREADS="$threads" "$bin" train --only "$model" --norms "${NORM:-bn}" --batches "$batch" \
            --budget "${BUDGET:-0.3}" $extra | awk '$1 == "train" && $2 != "model" {print $5}')
      echo "$side $c $r $v" >> "$out"
    done
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(dict)  # (config, repeat) -> {side: images/s}
for line in open(sys.argv[1]):
    side, config, repeat, value = line.split()
    runs[(config, repeat)][side] = float(value)
configs = list(dict.fromkeys(c for c, _ in runs))
print(f"{'config':16s} {'A img/s':>8s} {'B img/s':>8s}  B/A (median of pairs [range])")
for c in configs:
    pairs = [v for (cc, _), v in runs.items() if cc == c and len(v) == 2]
    ratios = [p["B"] / p["A"] for p in pairs]
    a_med = statistics.median(p["A"] for p in pairs)
    b_med = statistics.median(p["B"] for p in pairs)
    print(f"{c:16s} {a_med:8.0f} {b_med:8.0f}  {statistics.median(ratios):.3f} [{min(ratios):.2f}-{max(ratios):.2f}] n={len(ratios)}")
PY
