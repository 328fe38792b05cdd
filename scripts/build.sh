#!/usr/bin/env bash
# Install missing Debian packages, then configure and build normlab (Release) into ./build.
#   BUILD_DIR=build-asan CMAKE_ARGS="-DNORMLAB_SANITIZE=ON" scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
build_dir="${BUILD_DIR:-build}"
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
