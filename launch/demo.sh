#!/usr/bin/env bash
# The embedded known-answer demo: no downloads, about 10 minutes on 2 idle CPU cores once .venv exists.
#
#   bash launch/demo.sh [--config.data.seed=7 ...]     (extra flags go to every run)
#
# 1. generates the synthetic dataset (shapes moving left/right, up/down, orbiting cw/ccw, growing/
#    shrinking; each class's time-reversed twin shows the same frames in reverse order);
# 2. pre-trains a tiny frame-wise video-text backbone on captions that never name a direction, so the
#    backbone alone cannot tell a pair apart;
# 3. runs zero_shot, frame_average, msta and msta_no_temporal_conv (750 steps each) on the synthetic few-shot (K=16),
#    base-to-novel and zero-shot protocols, and prints the table.
# The known answer: frame-averaging methods sit at exactly 50.0 on the temporal pairs, MSTA at least 25
# points above, with a one-sided binomial p-value below 1e-6 over clip pairs (msta_jax/tools/demo_report.py).
# Writes into runs/demo/ (or $DEMO_DIR); every run's folder is keyed by its config, seeds included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
DEMO_DIR="${DEMO_DIR:-runs/demo}"
PY=.venv/bin/python
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 JAX_PLATFORMS=cpu
export JAX_COMPILATION_CACHE_DIR="$DEMO_DIR/.xla_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
mkdir -p "$DEMO_DIR"
start=$(date +%s)
key=$(printf '%s\n' "$@" | sha256sum | cut -c1-10)
pre="$DEMO_DIR/pretrain_$key"
if [ ! -f "$pre/results.json" ]; then
  echo "== pre-training the tiny backbone ($pre)"
  $PY -m msta_jax.main --config=configs/synthetic.py:protocol=pretrain --workdir="$pre" "$@" 2>"$pre.log" \
    || { echo "pre-training failed; see $pre.log" >&2; exit 1; }
fi
methods=zero_shot,frame_average,msta,msta_no_temporal_conv
for protocol in few_shot base_to_novel zero_shot; do
  echo "== $protocol"
  $PY launch/run_protocol.py --protocol=$protocol --dataset=synthetic --methods=$methods --shots=16 --seeds=1 \
    --backbone="$pre/backbone" --workdir="$DEMO_DIR" "$@" 2>>"$DEMO_DIR/runs_$key.log" \
    || { echo "$protocol failed; see $DEMO_DIR/runs_$key.log" >&2; exit 1; }
done
$PY -m msta_jax.tools.demo_report --results="$DEMO_DIR/demo_results.json" --seconds=$(( $(date +%s) - start ))
