#!/usr/bin/env bash
# Build the whole project with GCC AddressSanitizer + UndefinedBehaviorSanitizer
# (-DNORMLAB_SANITIZE=ON) into build-asan and run the full ctest suite there.
#   scripts/sanitize.sh              # build + every test
#   JOBS=1 scripts/sanitize.sh       # gentler on a shared machine (default: 2)
#   scripts/sanitize.sh -R test_data # extra arguments go to ctest
# Any ASan report (heap overflow, use after free, leak) or UBSan report aborts the test that
# hit it, so "100% tests passed" means the suite is clean under both sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build-asan}"
jobs="${JOBS:-2}"
start=$(date +%s)
scripts/install_deps.sh
# RelWithDebInfo: optimized enough that the suite finishes in minutes, with line numbers
# in the sanitizer reports. The benchmarks are not tests; skip them.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNORMLAB_SANITIZE=ON \
  -DNORMLAB_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j"$jobs"
built=$(date +%s)
# detect_leaks: LeakSanitizer on at exit; halt_on_error: the first report fails the test.
# print_stacktrace: UBSan reports come with a stack.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# OpenMP threads on 2 cores at most: the suite is about correctness here, not speed.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
status=0
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" "$@" || status=$?
end=$(date +%s)
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, total $((end - start)) s; ctest exit $status"
exit "$status"
