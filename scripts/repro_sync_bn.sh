#!/usr/bin/env bash
# The GN paper's data-parallel setting on 2 ranks (docs/reproductions.md, "sync-bn"): 2 images
# per worker, gradients averaged over the global batch of 4, and BatchNorm's statistics either
# per worker (PyTorch DDP's default: over each rank's 2 images) or over the global batch
# (SyncBN, --sync-bn: over all 4), against GroupNorm, which does not look at the batch.
# Model and data are the README's main-command MLP (3 x 128 ReLU, Fashion-MNIST, 3 epochs), where
# a statistic over 2 values per feature makes x_hat = +-1 (tests/test_bn_two_values.cpp).
# SGD momentum 0.9, lr 0.02 x 4/32 = 0.0025 (the GN paper's linear scaling from quick's 0.02 at 32).
#   scripts/repro_sync_bn.sh                  # 3 variants x 3 seeds, ~10 minutes on 2 cores
#   SEEDS="0" OUT=runs/sync-bn scripts/repro_sync_bn.sh
# Finished runs (summary.json says ok) are skipped, so it can be continued. Prints the table
# and copies the compact results (config, summary, eval curve) to RESULTS (default results/sync-bn).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
normlab="${BUILD:-$root/build}/normlab"
out="${OUT:-$root/runs/sync-bn}"
results="${RESULTS:-$root/results/sync-bn}"
seeds="${SEEDS:-0 1 2}"
# yield_when_idle: a rank waiting in a collective gives up its core (this machine may be busy with other jobs).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$out" "$results"
declare -A flags=([bn-per-worker]="--norm bn" [syncbn]="--norm bn --sync-bn" [gn]="--norm gn")
for seed in $seeds; do
  for variant in bn-per-worker syncbn gn; do
    run="$out/$variant-s$seed"
    if grep -qs '"status": "ok"' "$run/summary.json"; then continue; fi
    echo "== $variant seed $seed"
    # shellcheck disable=SC2086
    mpirun --mca mpi_yield_when_idle 1 -np 2 "$normlab" train --dataset fashion-mnist --model mlp --width 128 --depth 3 --activation relu \
      ${flags[$variant]} --batch-size 2 --epochs 3 --lr 0.0025 --seed "$seed" --threads 1 --eval-every-epoch \
      --out "$run" > "$out/$variant-s$seed.log" 2>&1
    mkdir -p "$results/$variant-s$seed"
    cp "$run/summary.json" "$run/eval.csv" "$results/$variant-s$seed/"
    # config.json without this machine's paths: "out" becomes the run's name (as export-results does)
    /usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["out"]=sys.argv[3]; open(sys.argv[2],"w").write(json.dumps(c, indent=2)+"\n")' \
      "$run/config.json" "$results/$variant-s$seed/config.json" "$variant-s$seed"
  done
done
/usr/bin/python3 - "$results" <<'EOF'
import json, pathlib, statistics, sys
root = pathlib.Path(sys.argv[1])
print("| BN statistics | test error (%), mean +/- std (n) | final training loss |")
print("|---|---|---|")
for variant, what in [("bn-per-worker", "per worker (2 images)"), ("syncbn", "SyncBN (global batch, 4 images)"),
                      ("gn", "GN (none)")]:
    runs = [json.load(open(p)) for p in sorted(root.glob(f"{variant}-s*/summary.json"))]
    runs = [r for r in runs if r.get("status") == "ok"]
    if not runs:
        continue
    err = [100 * (1 - r["test_accuracy"]) for r in runs]
    loss = [r["final_train_loss"] for r in runs]
    sd = statistics.stdev(err) if len(err) > 1 else float("nan")
    print(f"| {what} | {statistics.mean(err):.1f} +/- {sd:.1f} ({len(err)}) | {statistics.mean(loss):.2f} |")
EOF
