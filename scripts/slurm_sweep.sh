#!/usr/bin/env bash
# A normlab sweep as a Slurm job array: each array task runs one shard of the same plan, and all
# tasks write into one sweep directory on a filesystem every node sees. normlab reads its shard
# from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (minus SLURM_ARRAY_TASK_MIN), claims each
# run before starting it (OUT/claims), and skips runs that are finished or claimed by a live task.
#
#   sbatch --array=0-7 scripts/slurm_sweep.sh runs/gn-batch --preset gn-batch --data-dir data
#   # when every task has ended (or to gather what is done so far):
#   build/normlab report runs/gn-batch
#
# A task that crashed or was preempted leaves its claims behind; they go stale after
# --claim-lease seconds (default 300) without a heartbeat, and the same sbatch line run again
# (or `sbatch --array=3 ...` for just that shard) takes them over and resumes those runs from
# their checkpoints. Tested without Slurm by setting the variables by hand (tests/test_shard.cpp).
#SBATCH --job-name=normlab-sweep
#SBATCH --cpus-per-task=2
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: sbatch --array=0-(K-1) $0 OUT_DIR [normlab sweep flags...]" >&2
  exit 2
fi
out="$1"
shift
normlab="${NORMLAB_BIN:-build/normlab}"
threads="${SLURM_CPUS_PER_TASK:-1}"
# Default: one run at a time per task with every CPU of the task; --jobs / --threads in the
# flags replace these.
defaults=()
[[ " $* " == *" --jobs "* ]] || defaults+=(--jobs 1)
[[ " $* " == *" --threads "* ]] || defaults+=(--threads "$threads")
exec "$normlab" sweep --out "$out" "${defaults[@]}" "$@"
