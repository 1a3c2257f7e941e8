#!/usr/bin/env bash
# A Cloud TPU pod slice: the SAME command on every worker over `gcloud ... ssh --worker=all`; each worker
# runs one process and `--distributed` lets JAX find its peers (jax.distributed.initialize()).
#
#   bash launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo=~/msta_jax] [--dry_run] \
#       -- --config=configs/FILE.py[:args] --workdir=/shared/DIR [--config.KEY=VALUE ...]
#   bash launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--repo=...] [--dry_run] --install
#
# --install creates <repo>/.venv and installs msta_jax[tpu] on every worker (the repository must already be
# at <repo> on each). The workdir, config.data.data_dir and the weights must be at the same path on every
# worker (a shared filesystem: checkpoints are written by all processes). --dry_run prints the gcloud
# command and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/lib.sh
tpu=""; zone=""; project=""; repo='~/msta_jax'; dry=0; install=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tpu=*) tpu="${1#*=}";;
    --zone=*) zone="${1#*=}";;
    --project=*) project="${1#*=}";;
    --repo=*) repo="${1#*=}";;
    --install) install=1;;
    --dry_run) dry=1;;
    --) shift; break;;
    *) echo "unknown option $1 (options before --, main's flags after it)" >&2; exit 2;;
  esac
  shift
done
[ -n "$tpu" ] && [ -n "$zone" ] || { echo "pass --tpu=NAME and --zone=ZONE" >&2; exit 2; }
if [ "$install" = 1 ]; then
  remote="cd $repo && python3 -m venv .venv && .venv/bin/pip install -q -e '.[tpu]'"
else
  require_workdir " (a path every worker shares)" "$@"
  args=$(printf ' %q' "$@")
  remote="cd $repo && USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m msta_jax.main$args --distributed"
fi
cmd=(gcloud compute tpus tpu-vm ssh "$tpu" "--zone=$zone")
[ -n "$project" ] && cmd+=("--project=$project")
cmd+=(--worker=all "--command=$remote")
if [ "$dry" = 1 ]; then  # The remote command single-quoted, so the line can be pasted as is.
  sq="'${remote//\'/\'\\\'\'}'"
  printf '%q ' "${cmd[@]:0:${#cmd[@]}-1}"; echo "--command=$sq"
  exit 0
fi
exec "${cmd[@]}"
