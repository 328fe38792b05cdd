#!/usr/bin/env bash
# Data-parallel training throughput on CIFAR-10 (a benchmark, not a test): for each model and
# per-worker batch b, the same global batch of 2b images per step trained three ways, side by side:
#   1x1  one process, 1 thread            normlab train --batch-size 2b --threads 1
#   1x2  one process, 2 threads           normlab train --batch-size 2b --threads 2
#   2x1  mpirun -np 2, 1 thread per rank  normlab train --batch-size b  --threads 1
# and prints images/s (from metrics.csv's per-step times, step 1 excluded as warm-up), the ratio
# 2x1 / 1x1, and rank 0's time per step in the two all-reduces (waiting for the other rank
# included). The one-process runs stop right after their last step (--simulate-kill-at-step) to
# skip the final test-set evaluation, which is not measured anyway.
#   scripts/bench_data_parallel.sh                 # cnn and resnet20 at b = 2, 8, 32
#   MODELS=cnn BATCHES="8" IMAGES=4096 scripts/bench_data_parallel.sh
# Needs CIFAR-10 in DATA_DIR (default ../shared/data, as the README's commands). The machine's
# load average is printed before each model; on a shared machine compare the columns of one row.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
normlab="${BUILD:-$root/build}/normlab"
data="${DATA_DIR:-$root/../shared/data}"
images="${IMAGES:-3072}"  # images trained per measurement
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))" "$1" "$2"; }
run() {  # name, launcher (word-split on purpose), batch, threads, extra flags
  # shellcheck disable=SC2086
  $2 "$normlab" train --dataset cifar10 --data-dir "$data" --model "$model" --norm bn --subset 8192 \
    --batch-size "$3" --threads "$4" --steps "$steps" --out "$out/$1" --log-every 1 ${5:-} >/dev/null 2>&1 || true
}
# images/s over steps 2..N of metrics.csv (columns step,epoch,train_loss,train_acc,lr,seconds)
speed() {
  /usr/bin/python3 -c "import sys; r=[l.split(',') for l in open(sys.argv[1]).read().split()[1:]]; \
print((int(r[-1][0])-int(r[0][0]))*int(sys.argv[2])/(float(r[-1][5])-float(r[0][5])))" "$1/metrics.csv" "$2"
}
printf "%-9s %3s %6s %10s %10s %10s %8s %14s\n" model b global "1x1 img/s" "1x2 img/s" "2x1 img/s" "2x1/1x1" "comm ms/step"
for model in ${MODELS:-cnn resnet20}; do
  echo "# $model, load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  for b in ${BATCHES:-2 8 32}; do
    global=$((2 * b))
    steps=$((images / global))
    run "$model-$b-1x1" env "$global" 1 "--simulate-kill-at-step $steps"
    run "$model-$b-1x2" env "$global" 2 "--simulate-kill-at-step $steps"
    run "$model-$b-2x1" "mpirun --oversubscribe -np 2" "$b" 1
    one=$(speed "$out/$model-$b-1x1" "$global")
    two_threads=$(speed "$out/$model-$b-1x2" "$global")
    two_ranks=$(speed "$out/$model-$b-2x1" "$global")
    comm=$(field "$out/$model-$b-2x1/summary.json" communication_ms_per_step)
    /usr/bin/python3 -c "import sys; m,b,g,a,t,r,c=sys.argv[1:]; print(f'{m:<9} {b:>3} {g:>6} {float(a):10.0f} {float(t):10.0f} {float(r):10.0f} {float(r)/float(a):8.2f} {float(c):14.2f}')" \
      "$model" "$b" "$global" "$one" "$two_threads" "$two_ranks" "$comm"
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
