#!/usr/bin/env bash
# The README's test command: install deps, build, run every test with ctest.
# The suite runs twice: once with the best SIMD kernels this CPU has, once forced to the
# scalar path (NORMLAB_SIMD=scalar), so the fallback a machine without AVX would use is tested too
# (and scripts/check_scalar_kernels.sh first checks that this path really is scalar).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir="${BUILD_DIR:-build}"
echo "== ctest (best SIMD level) =="
ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)"
echo "== the scalar kernels have no packed arithmetic =="
scripts/check_scalar_kernels.sh "$build_dir"
echo "== ctest (NORMLAB_SIMD=scalar) =="
NORMLAB_SIMD=scalar ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)"
