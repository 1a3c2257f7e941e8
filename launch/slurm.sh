#!/usr/bin/env bash
# SLURM, multi-node GPU: writes an sbatch script with one task (process) per node, each driving all GPUs of
# its node; process 0's node is the coordinator, the process id is SLURM_PROCID. Submits it with sbatch.
#
#   bash launch/slurm.sh --nodes=2 [--gpus_per_node=8] [--partition=P] [--account=A] [--time=24:00:00] \
#       [--port=12355] [--job_name=msta] [--cpus_per_task=N] [--dry_run] -- --config=configs/FILE.py[:args] --workdir=/shared/DIR ...
#
# Each node is allocated whole (--exclusive) and its one task gets every CPU of the node
# (srun --cpus-per-task=$SLURM_CPUS_ON_NODE): the input pipeline decodes video on them. --cpus_per_task=N
# asks for N instead.
#
# The script is saved as <workdir>/slurm_job.sh (logs: <workdir>/slurm-<jobid>.out). The repository, its
# .venv, the data and the workdir must be on a filesystem every node shares. --dry_run prints the script
# and the sbatch command and submits nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/lib.sh
nodes=""; gpus=8; cpus=""; partition=""; account=""; time_limit="24:00:00"; port=12355; name=msta; dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes=*) nodes="${1#*=}";;
    --gpus_per_node=*) gpus="${1#*=}";;
    --partition=*) partition="${1#*=}";;
    --account=*) account="${1#*=}";;
    --time=*) time_limit="${1#*=}";;
    --port=*) port="${1#*=}";;
    --job_name=*) name="${1#*=}";;
    --cpus_per_task=*) cpus="${1#*=}";;
    --dry_run) dry=1;;
    --) shift; break;;
    *) echo "unknown option $1 (options before --, main's flags after it)" >&2; exit 2;;
  esac
  shift
done
[ -n "$nodes" ] || { echo "pass --nodes=N" >&2; exit 2; }
require_workdir " (on a filesystem every node shares)" "$@"
repo="$(pwd)"
PY="${PYTHON:-.venv/bin/python}"
args=$(printf ' %q' "$@")
script="#!/usr/bin/env bash
#SBATCH --job-name=$name
#SBATCH --nodes=$nodes
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=$gpus
#SBATCH --exclusive
#SBATCH --time=$time_limit
#SBATCH --output=$workdir/slurm-%j.out"
[ -n "$partition" ] && script+=$'\n'"#SBATCH --partition=$partition"
[ -n "$account" ] && script+=$'\n'"#SBATCH --account=$account"
[ -n "$cpus" ] && script+=$'\n'"#SBATCH --cpus-per-task=$cpus"
# What each task runs; single-quoted in the script, so SLURM_PROCID is expanded by each task, not by the
# batch shell (which only exports the coordinator).
task="$PY -m msta_jax.main$args --coordinator_address=\$coordinator"
task+=" --num_processes=\$SLURM_NTASKS --process_id=\$SLURM_PROCID"
script+="
set -euo pipefail
cd $(printf '%q' "$repo")
export coordinator=\$(scontrol show hostnames \"\$SLURM_JOB_NODELIST\" | head -n 1):$port
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2
srun --kill-on-bad-exit=1 --cpus-per-task=${cpus:-\$SLURM_CPUS_ON_NODE} bash -c '${task//\'/\'\\\'\'}'
"
if [ "$dry" = 1 ]; then
  printf '%s' "$script"
  echo "# submit: sbatch $workdir/slurm_job.sh"
  exit 0
fi
mkdir -p "$workdir"
printf '%s' "$script" > "$workdir/slurm_job.sh"
sbatch "$workdir/slurm_job.sh"
