#!/usr/bin/env bash
# Every GPU measurement of issues 12 and 18 in one run (each part has a timeout so the whole stays
# under 10 minutes), JSON and logs into $OUT, the summary in $OUT/gpu_suite.json:
#   1. MSTA train step, ViCLIP-B/16 8x224, bf16 (models/precision.py: float32 residual stream), batch
#      32: step time, clips/s, MFU from analytic model FLOPs (models/flops.py) against the detected
#      device's dense peak (benchmarks/train_step.py `_PEAKS`: H100 SXM/PCIe/NVL, H200, A100) and XLA's
#      count beside it (`*_xla_mfu`), compiled memory; remat off and on; full fine-tuning beside it.
#      Attention: cuDNN's fused kernel (models/attention.py: GPU + bf16).
#   2. ViFi-CLIP-style step (CLIP-B/16, frame average, full fine-tuning, CE), ours against HF PyTorch
#      CLIP under torch.autocast bf16 (benchmarks/pytorch_step.py, its own process, torch.compile where
#      it works), same shapes: `vificlip_ours_over_pytorch` = PyTorch step time / ours.
#   3. CLIP image/text forward (CPU benchmark's settings) is CPU-only by design: not run here.
#
# Imports: jax, flax, optax, numpy, safetensors, absl (optax's dependency), transformers (PyTorch part),
# torch, and ml_collections, the one wheel the suite carries. No TensorFlow, TFDS, clu, PyAV, grain,
# array_record or ftfy (tests/benchmarks/gpu_suite_test.py runs the smoke with them blocked).
#
# Run from the repository root (the device tool's working directory):
#   prepare once here:  .venv/bin/pip download --no-deps ml_collections==1.1.0 -d .whl
#   then:               run(command='bash benchmarks/gpu_suite.sh', carry=['.whl'], timeout_s=600)
# Smoke test on a CPU (tiny sizes, about a minute on an idle core):
#   SUITE_SMOKE=1 PYTHON=.venv/bin/python OUT=/tmp/suite bash benchmarks/gpu_suite.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/msta_gpu_suite}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# JAX would take 75% of the GPU at start; PyTorch runs in a child process beside it (before JAX's steps).
export XLA_PYTHON_CLIENT_PREALLOCATE=false
start=$(date +%s)

{
  date -Is
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  "$PY" -c 'import jax, sys; print("python", sys.version.split()[0], "jax", jax.__version__, jax.devices())' 2>&1
  "$PY" -c 'import torch, transformers as t; print("torch", torch.__version__, "transformers", t.__version__)' 2>&1
} > "$OUT/env.txt"
cat "$OUT/env.txt"

if ! "$PY" -c 'import ml_collections' 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps .whl/ml_collections-*.whl 2>&1 | tail -2 \
    || echo "ml_collections missing: carry .whl/ (see the header of this script)"
fi

# SUITE_SMOKE=1: the same commands at tiny sizes, to check the script itself on a CPU.
smoke() { [ "${SUITE_SMOKE:-0}" = 1 ] && echo "--config.model.name=$1 --config.model.image_size=32 \
  --config.msta.first_block=2 --config.msta.last_block=2 --batch=2 --num_classes=4 --warmup=0 --iters=1 \
  --notorch_compile"; }

part() {  # part NAME TIMEOUT_S ARGS...: runs benchmarks/train_step.py, keeps its log and its JSON line.
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(($(date +%s) - start)) s into the suite)"
  timeout "$limit" "$PY" benchmarks/train_step.py "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  grep -v '^[IWE][0-9]\{4\} ' "$OUT/$name.log" | tail -8
  tail -n 1 "$OUT/$name.log" | grep '^{' > "$OUT/$name.json" \
    || echo "{\"part\": \"$name\", \"rc\": $rc}" > "$OUT/$name.json"
  echo "   rc=$rc"
}

# 1. MSTA bf16: remat off / on, full fine-tuning for the saving (ViCLIP-B/16, SSv2's 174 classes).
part msta_bf16 330 --config=configs/ssv2_fewshot.py --config.model.dtype=bfloat16 --batch=32 \
  --variants=msta:off,msta:on,full:off --warmup=2 --iters=5 $(smoke tiny_viclip)

# 2. ViFi-CLIP-style full fine-tuning step, ours against PyTorch bf16 autocast (CLIP-B/16, CE only).
part vificlip_bf16 200 --config=configs/ssv2_fewshot.py:backbone=clip --config.model.dtype=bfloat16 \
  --config.loss.consistency_weight=0 --batch=32 --variants=full:off --pytorch --warmup=2 --iters=5 \
  $(smoke tiny_clip)

"$PY" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
parts = {}
for name in ('msta_bf16', 'vificlip_bf16'):
  try:
    parts[name] = json.load(open(os.path.join(out, name + '.json')))
  except (OSError, ValueError) as e:
    parts[name] = {'error': str(e)}
summary = {'suite': 'gpu_suite', 'parts': parts}
for part in ('msta_bf16', 'vificlip_bf16'):
  summary[f'{part}_device'] = parts[part].get('device')
  summary[f'{part}_peak_source'] = parts[part].get('peak_source')
  prefix = '' if part == 'msta_bf16' else 'vificlip_'
  for v in parts[part].get('variants', []):
    name = f"{prefix}{v['impl']}_{v['mode']}_remat_{'on' if v['remat'] else 'off'}"
    summary[f'{name}_mfu'] = v.get('mfu')          # Analytic model FLOPs (models/flops.py).
    summary[f'{name}_xla_mfu'] = v.get('xla_mfu')  # XLA's cost analysis (misses cuDNN attention).
summary['vificlip_ours_over_pytorch'] = parts['vificlip_bf16'].get('full_ours_over_pytorch_throughput')
json.dump(summary, open(os.path.join(out, 'gpu_suite.json'), 'w'), indent=1)
print(json.dumps({k: v for k, v in summary.items() if k != 'parts'}))
EOF
echo "suite done in $(($(date +%s) - start)) s; files in $OUT"
