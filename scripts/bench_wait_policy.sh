#!/usr/bin/env bash
# Side-by-side images/s of libgomp wait policies for the `normlab` command (issue 13).
#   COND=quiet REPEATS=3 scripts/bench_wait_policy.sh >> wait.csv
# Each candidate is set explicitly (OMP_WAIT_POLICY or GOMP_SPINCOUNT), so the command's own
# choice does not interfere; "spin300000" is libgomp's default spin count (OMP_WAIT_POLICY unset).
# Candidates alternate within every repeat (order reversed every other repeat). One CSV row a run:
# condition,model,threads,batch,candidate,repeat,load1,builds,images_per_s,other_cores
# other_cores: CPU time everything else used during the run (/proc/stat busy minus the run's own
# user+sys), per second of the run: 0 on a quiet machine, ~1 with one competing busy thread.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
cond="${COND:-unlabelled}"
repeats="${REPEATS:-2}"
cands="${CANDS:-passive spin1000 spin10000 spin100000 spin300000 active}"
cands1="${CANDS1:-passive spin10000 spin300000}"   # --threads 1
bin="${BIN:-build/normlab}"
out="${TMPDIR:-/tmp}/bench_wait_policy.$$"
# dataset model batch steps threads
configs="${CONFIGS:-mnist:cnn:2:1000:2 mnist:cnn:8:400:2 mnist:cnn:32:120:2 cifar10:cnn:2:500:2 cifar10:cnn:32:50:2 cifar10:resnet20:32:15:2 mnist:cnn:8:400:1 cifar10:cnn:32:30:1}"
run() {  # cand dataset model batch steps threads
  local cand=$1; shift
  local -a env=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
  case $cand in
    passive|active) env+=("OMP_WAIT_POLICY=$cand") ;;
    spin*) env+=("GOMP_SPINCOUNT=${cand#spin}") ;;
  esac
  rm -rf "$out"
  local b0 t0 b1 t1 cpu
  b0=$(busy_jiffies); t0=$(date +%s.%N)
  TIMEFORMAT="%U %S"
  cpu=$( { time "${env[@]}" "$bin" train --dataset "$1" --data-dir ../shared/data --model "$2" --norm bn \
    --batch-size "$3" --steps "$4" --threads "$5" --seed 0 --out "$out" >/dev/null 2>&1; } 2>&1 )
  b1=$(busy_jiffies); t1=$(date +%s.%N)
  local ips
  ips=$(grep -o '"images_per_second": [0-9.]*' "$out/summary.json" 2>/dev/null | awk '{printf "%.0f", $2}')
  echo "${ips:-nan},$(awk -v b="$((b1 - b0))" -v c="$cpu" -v w="$(echo "$t1 - $t0" | bc)" \
    'BEGIN{split(c, u, " "); printf "%.2f", (b / 100 - u[1] - u[2]) / w}')"
}
busy_jiffies() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
for r in $(seq 1 "$repeats"); do
  for c in $configs; do
    IFS=: read -r ds model b steps t <<<"$c"
    list=$cands; [ "$t" = 1 ] && list=$cands1
    # shellcheck disable=SC2086  # unquoted on purpose: one word per candidate
    [ $((r % 2)) = 0 ] && list=$(echo $list | tr ' ' '\n' | tac | tr '\n' ' ')
    for cand in $list; do
      load=$(cut -d' ' -f1 /proc/loadavg)
      builds=$(pgrep -c cc1plus || true)
      ips=$(run "$cand" "$ds" "$model" "$b" "$steps" "$t")
      echo "$cond,$ds-$model,$t,$b,$cand,$r,$load,$builds,$ips"
    done
  done
done
rm -rf "$out"
