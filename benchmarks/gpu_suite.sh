#!/usr/bin/env bash
# Every GPU measurement of issue 12 in one run (about 6 minutes on one H200; each part has a timeout so
# the whole stays under 10), JSON and logs into $OUT:
#   1. MSTA train step, ViCLIP-B/16 8x224, bf16, batch 32: step time, clips/s, XLA FLOPs, MFU against
#      the H100/H200 dense bf16 peak (989 TFLOP/s; goal >= 50%), compiled memory; remat off and on;
#      full fine-tuning beside it. Attention goes through jax.nn.dot_product_attention's cuDNN kernel
#      (models/transformer.py `attention`: GPU + bf16).
#   2. ViFi-CLIP-style step (CLIP-B/16, frame average, full fine-tuning, CE), ours against HF PyTorch
#      CLIP under torch.autocast bf16, same shapes.
#   3. CLIP image/text forward (CPU benchmark's settings) is CPU-only by design: not run here.
#
# Run from the repository root (the device tool's working directory):
#   prepare once here:  .venv/bin/pip download --no-deps ml_collections==1.1.0 -d .whl
#   then:               run(command='bash benchmarks/gpu_suite.sh', carry=['.whl'], timeout_s=600)
# The GPU image has jax, flax, optax, torch and transformers but no ml_collections (pure Python: installed
# from the carried .whl/) and no TensorFlow (nothing here imports it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/msta_gpu_suite}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# JAX would take 75% of the GPU at start; part 2 runs PyTorch in the same process after our step.
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
  --config.msta.first_block=2 --config.msta.last_block=2 --batch=2 --warmup=1 --iters=1"; }

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
for v in parts['msta_bf16'].get('variants', []):
  summary[f"{v['impl']}_{v['mode']}_remat_{'on' if v['remat'] else 'off'}_mfu"] = v.get('mfu')
summary['vificlip_ours_over_pytorch'] = parts['vificlip_bf16'].get('full_ours_over_pytorch_throughput')
json.dump(summary, open(os.path.join(out, 'gpu_suite.json'), 'w'), indent=1)
print(json.dumps({k: v for k, v in summary.items() if k != 'parts'}))
EOF
echo "suite done in $(($(date +%s) - start)) s; files in $OUT"
