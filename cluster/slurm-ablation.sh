#!/bin/bash
# Table 2 as a SLURM job array: one task per training job, one GPU each.
#
#   cmri2spec-ablation --flagfile=ablation_paper --data_dir=DATA --list_jobs | wc -l     # 945 jobs: 0-944
#   sbatch cluster/slurm-ablation.sh                                     # the array
#   sbatch --dependency=afterany:<array job id> --export=ALL,COLLECT=1 cluster/slurm-ablation.sh
#                                                                        # then the table
#
# Before: the package installed in the environment every node sees (`pip install .`, or
# `make install` and `source .venv/bin/activate` below), and the dataset written once in a
# folder every node sees (tasks never write it; for the phantom:
# `cmri2spec-phantom --out_dir=$DATA`). OUT must be on that shared file system too: every task
# writes only its own folder OUT/<row>/seed-<s>/fold-<f>; a task whose job is finished does
# nothing; a task that was stopped resumes from its last epoch when run again.
# Edit the #SBATCH lines for your cluster (partition, account, time); --array must match
# --list_jobs's count (the %32 caps how many run at once).
#SBATCH --job-name=cmri2spec-table2
#SBATCH --array=0-944%32
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --time=12:00:00
#SBATCH --output=slurm-%x-%A_%a.out

set -euo pipefail
DATA=${DATA:-/shared/cmri2spec/data/phantom}
OUT=${OUT:-/shared/cmri2spec/runs/ablation_paper}
FLAGS=(--flagfile=ablation_paper --data_dir="$DATA" --out_dir="$OUT" --cache_dir="$OUT/cache")

if [ -n "${COLLECT:-}" ]; then
  exec cmri2spec-ablation "${FLAGS[@]}" --collect
fi
# SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT pick this task's job.
exec srun cmri2spec-ablation "${FLAGS[@]}"
