#!/usr/bin/env bash
# Build normlab's libFuzzer targets (fuzz/*.cpp) with clang and run each for a while.
#   scripts/fuzz.sh                 # every target, 60 s each, one after another
#   scripts/fuzz.sh 300 safetensors # one target for 5 minutes
#   JOBS=1 scripts/fuzz.sh 30       # build with one job (default 2)
# Targets: idx cifar10 gzip text_corpus safetensors. Each run starts from fuzz/seeds/<target>
# and tests/fuzz_corpus/<target> and keeps growing its corpus in build-fuzz/corpus/<target>.
# A crash, sanitizer report or broken invariant stops the target; the input is saved as
# build-fuzz/crashes/<target>/crash-* (minimize it with `build-fuzz/fuzz_<target>
# -minimize_crash=1 -runs=10000 <file>`, then keep it in tests/fuzz_corpus/<target>/, which
# test_regressions replays in every ctest run). Exit status: 0 if every target ran clean,
# 1 if any found a problem, 2 on a usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
all_targets=(idx cifar10 gzip text_corpus safetensors)
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: the first argument is the seconds per target (a positive integer), got '$seconds'" >&2
  exit 2
fi
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  if [[ ! " ${all_targets[*]} " == *" $t "* ]]; then
    echo "fuzz.sh: unknown target '$t'; the targets are: ${all_targets[*]}" >&2
    exit 2
  fi
done
cxx="${CXX:-clang++}"
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: '$cxx' not found; libFuzzer needs clang (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    "$cxx" -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null; then
  echo "fuzz.sh: '$cxx' cannot link -fsanitize=fuzzer,address,undefined; install the clang runtimes" \
       "(apt-get install libclang-rt-14-dev)" >&2
  exit 2
fi
scripts/install_deps.sh
build_dir="${BUILD_DIR:-build-fuzz}"
CXX="$cxx" cmake -S fuzz -B "$build_dir" >/dev/null
cmake --build "$build_dir" -j"${JOBS:-2}" --target "${targets[@]/#/fuzz_}"

export OMP_NUM_THREADS=1
status=0
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  crashes="$build_dir/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  seed_dirs=(fuzz/seeds/"$t")
  [ -d tests/fuzz_corpus/"$t" ] && seed_dirs+=(tests/fuzz_corpus/"$t")
  opts=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
        -artifact_prefix="$crashes/")
  # CIFAR-10 records are 3073 bytes: inputs must be able to hold two of them.
  if [ "$t" = cifar10 ]; then opts+=(-max_len=8192); else opts+=(-max_len=4096); fi
  [ -f fuzz/"$t".dict ] && opts+=(-dict=fuzz/"$t".dict)
  log="$build_dir/fuzz_$t.log"
  echo "== fuzz_$t for ${seconds} s (log: $log) =="
  rc=0
  "$build_dir/fuzz_$t" "${opts[@]}" "$corpus" "${seed_dirs[@]}" >"$log" 2>&1 || rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz_$t: clean; ${execs:-?} executions; ${done_line:-no DONE line}"
  else
    status=1
    echo "fuzz_$t: FOUND A PROBLEM (exit $rc) after ${execs:-?} executions; report:"
    grep -E 'ERROR|runtime error|FUZZ_REQUIRE|terminate|SUMMARY|Test unit written' "$log" | head -20
  fi
done
exit "$status"
