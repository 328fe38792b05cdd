#!/usr/bin/env bash
# The README's main command: install deps, build, then a quick comparison of BatchNorm,
# GroupNorm, LayerNorm and no normalization at batch 2 and 32 on Fashion-MNIST (Debian's
# dataset-fashion-mnist package), printing the table and writing runs/quick/report.html.
# Re-running it skips finished runs (the sweep is resumable).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out="${OUT:-runs/quick}"
./build/normlab sweep --preset quick --out "$out" "$@"
./build/normlab report "$out"
