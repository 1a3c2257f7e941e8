#!/usr/bin/env bash
# Runs several processes of `python -m msta_jax.main` on this machine, talking over 127.0.0.1: the
# multi-host code paths (distributed init, global batches, sharded checkpoints, exact distributed
# evaluation) on one laptop.
#
#   bash launch/local_multiprocess.sh [--num_processes=2] [--port=12355] [--devices_per_process=1] \
#       [--dry_run] -- --config=configs/tiny.py --workdir=runs/mp
#
# Logs go to <workdir>/process_<i>.log. Exits with the exit code of the first process that fails (75: preempted)
# and names it.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/lib.sh
num=2; port=12355; devices=1; dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --num_processes=*) num="${1#*=}";;
    --port=*) port="${1#*=}";;
    --devices_per_process=*) devices="${1#*=}";;
    --dry_run) dry=1;;
    --) shift; break;;
    *) echo "unknown option $1 (options before --, main's flags after it)" >&2; exit 2;;
  esac
  shift
done
require_workdir "" "$@"
PY="${PYTHON:-.venv/bin/python}"
args=$(printf ' %q' "$@")
cmds=()
for ((i = 0; i < num; i++)); do
  cmds+=("XLA_FLAGS=--xla_force_host_platform_device_count=$devices JAX_PLATFORMS=cpu USE_TF=0 $PY -m msta_jax.main$args --coordinator_address=127.0.0.1:$port --num_processes=$num --process_id=$i")
done
if [ "$dry" = 1 ]; then
  printf '%s\n' "${cmds[@]}"
  exit 0
fi
mkdir -p "$workdir"
pids=()
for ((i = 0; i < num; i++)); do
  bash -c "${cmds[$i]}" > "$workdir/process_$i.log" 2>&1 &
  pids+=($!)
done
# In the order they end: the first failure is named as such (the others usually fail because of it).
status=0
for ((n = 0; n < num; n++)); do
  rc=0; wait -n -p done || rc=$?
  for ((i = 0; i < num; i++)); do [ "${pids[$i]}" = "$done" ] && break; done
  if [ "$rc" != 0 ]; then
    [ "$status" = 0 ] && first=" first" || first=""
    echo "process $i failed$first (exit $rc); see $workdir/process_$i.log" >&2
    [ "$status" = 0 ] && status=$rc
  fi
done
exit $status
