#!/usr/bin/env bash
# The embedded known-answer demo: no downloads, about 7 minutes on 2 idle CPU cores once .venv exists
# (6 min 48 s measured, BENCHMARKS.md).
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
# Writes into runs/demo/ (or $DEMO_DIR); every run's folder is keyed by its config, seeds included. All of
# it runs in one Python process (msta_jax/tools/demo.py), which a re-run resumes: finished runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup_venv.sh
DEMO_DIR="${DEMO_DIR:-runs/demo}"
PY=.venv/bin/python
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 JAX_PLATFORMS=cpu
export JAX_COMPILATION_CACHE_DIR="$DEMO_DIR/.xla_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
mkdir -p "$DEMO_DIR"
start=$(date +%s)
log="$DEMO_DIR/demo_$(printf '%s\n' "$@" | sha256sum | cut -c1-10).log"
echo "== the demo's log: $log"
# One process runs pre-training, the three protocols and the report (msta_jax/tools/demo.py).
$PY -m msta_jax.tools.demo --workdir="$DEMO_DIR" --started_at="$start" "$@" 2>>"$log" \
  || { status=$?; tail -n 5 "$log" >&2; echo "the demo stopped (exit $status); see $log" >&2; exit "$status"; }
