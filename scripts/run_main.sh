#!/usr/bin/env bash
# The README's main command: install deps, build, then BatchNorm with statistics over 2 vs 32
# examples (same optimizer batch 32, lr and steps), GroupNorm, LayerNorm and no norm, on an MLP
# and the CNN, 2 seeds, on Fashion-MNIST (Debian's dataset-fashion-mnist package), printing the
# table and writing runs/quick/report.html (README: "What is compared, and why").
# Re-running it skips finished runs (the sweep is resumable).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
out="${OUT:-runs/quick}"
./build/normlab sweep --preset quick --out "$out" "$@"
./build/normlab report "$out"
