#!/usr/bin/env bash
# A Cloud TPU pod slice: the SAME command on every worker over `gcloud ... ssh --worker=all`; each worker
# runs one process and `--distributed` lets JAX find its peers (jax.distributed.initialize()).
#
#   bash launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo=~/msta_jax] [--dry_run] --install
#   bash launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo=...] [--log_dir=DIR] [--dry_run] \
#       -- --config=configs/FILE.py[:args] --workdir=/shared/DIR [--config.KEY=VALUE ...]
#   bash launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--dry_run] --kill
#
# --install makes <repo>/.venv with Python 3.11 from uv (installed with pip from the package index when the
# worker has none; stock TPU VM images ship Python 3.10) and installs msta_jax[tpu] into it, then checks the
# version; it fails with a message naming what is missing. The repository must already be at <repo> on each
# worker. A run starts DETACHED on every worker (nohup, the ssh returns at once) and logs to
# <log_dir>/worker_<hostname>.log (log_dir: the workdir; for a gs:// workdir, <repo>/logs). --kill frees
# the TPU: it kills every process holding the chips' device files (a stale run, a notebook). The workdir,
# config.data.data_dir and the weights must be at the same path on every worker. --dry_run prints the
# gcloud command and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/lib.sh
tpu=""; zone=""; project=""; repo='~/msta_jax'; dry=0; mode=run; log_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tpu=*) tpu="${1#*=}";;
    --zone=*) zone="${1#*=}";;
    --project=*) project="${1#*=}";;
    --repo=*) repo="${1#*=}";;
    --log_dir=*) log_dir="${1#*=}";;
    --install) mode=install;;
    --kill) mode=kill;;
    --dry_run) dry=1;;
    --) shift; break;;
    *) echo "unknown option $1 (options before --, main's flags after it)" >&2; exit 2;;
  esac
  shift
done
[ -n "$tpu" ] && [ -n "$zone" ] || { echo "pass --tpu=NAME and --zone=ZONE" >&2; exit 2; }
case "$mode" in
  install)
    remote="cd $repo && { command -v uv >/dev/null || python3 -m pip install --user -q uv; } && export PATH=\$HOME/.local/bin:\$PATH"
    remote+=" && uv venv -q --python 3.11 .venv && uv pip install -q --python .venv/bin/python -e '.[tpu]'"
    remote+=" && .venv/bin/python -c 'import sys; assert sys.version_info >= (3, 11), sys.version'"
    remote+=" || { echo \"msta_jax: no Python >= 3.11 venv at $repo/.venv on \$(hostname): install uv (python3 -m pip install --user uv) and rerun --install\" >&2; exit 1; }";;
  kill)
    remote="sudo lsof -t /dev/accel* /dev/vfio/* 2>/dev/null | sort -u | xargs -r sudo kill -9; echo \"\$(hostname): TPU free\"";;
  run)
    require_workdir " (a path every worker shares)" "$@"
    case "$workdir" in *://*) log_dir="${log_dir:-$repo/logs}";; *) log_dir="${log_dir:-$workdir}";; esac
    args=$(printf ' %q' "$@")
    tilde='~'; logs=$(printf '%q' "$log_dir"); logs="${logs/#\\~/$tilde}"  # A leading ~ expands on the worker.
    remote="cd $repo && mkdir -p $logs && nohup env USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m msta_jax.main$args"
    remote+=" --distributed > $logs/worker_\$(hostname).log 2>&1 < /dev/null &";;
esac
cmd=(gcloud compute tpus tpu-vm ssh "$tpu" "--zone=$zone")
[ -n "$project" ] && cmd+=("--project=$project")
cmd+=(--worker=all "--command=$remote")
if [ "$dry" = 1 ]; then  # The remote command single-quoted, so the line can be pasted as is.
  sq="'${remote//\'/\'\\\'\'}'"
  printf '%q ' "${cmd[@]:0:${#cmd[@]}-1}"; echo "--command=$sq"
  exit 0
fi
"${cmd[@]}"
[ "$mode" = run ] && echo "started on every worker of $tpu; logs: $log_dir/worker_<hostname>.log"
