#!/usr/bin/env bash
# One GPU host: one process drives every visible GPU (the 'data' mesh axis spans them).
#
#   bash launch/gpu_host.sh [--gpus=0,1,...] [--dry_run] \
#       -- --config=configs/FILE.py[:args] --workdir=DIR [--config.KEY=VALUE ...]
#   bash launch/gpu_host.sh [--gpus=...] [--dry_run] --run_protocol \
#       -- --protocol=few_shot --dataset=hmdb51 --workdir=DIR [run_protocol.py flags]
#
# The first form runs `python -m msta_jax.main`, the second launch/run_protocol.py (every member run of a
# protocol, one after another). --gpus sets CUDA_VISIBLE_DEVICES (default: all GPUs). Output is also
# appended to <workdir>/launch.log. --dry_run prints the command and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/lib.sh
gpus=""; dry=0; runner=main
while [ $# -gt 0 ]; do
  case "$1" in
    --gpus=*) gpus="${1#*=}";;
    --dry_run) dry=1;;
    --run_protocol) runner=protocol;;
    --) shift; break;;
    *) echo "unknown option $1 (options before --, the program's flags after it)" >&2; exit 2;;
  esac
  shift
done
require_workdir "" "$@"
PY="${PYTHON:-.venv/bin/python}"
if [ "$runner" = main ]; then prog="-m msta_jax.main"; else prog="launch/run_protocol.py"; fi
env="USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2"
[ -n "$gpus" ] && env="CUDA_VISIBLE_DEVICES=$gpus $env"
cmd="$env $PY $prog$(printf ' %q' "$@")"
if [ "$dry" = 1 ]; then
  echo "$cmd"
  exit 0
fi
mkdir -p "$workdir"
bash -c "$cmd" 2>&1 | tee -a "$workdir/launch.log"
exit "${PIPESTATUS[0]}"
