"""HF PyTorch CLIP's full fine-tuning step (ViFi-CLIP style), alone in its own process: no JAX here, so
the PyTorch side gets the whole accelerator and its own memory pool.

    python benchmarks/pytorch_step.py '{"arch": {...ModelConfig as a dict...}, "batch": 32, ...}'

benchmarks/train_step.py --pytorch writes the spec (the same architecture, batch, class count and
AdamW hyper-parameters as its own full fine-tuning variant) and reads the last line this prints, one
JSON object. The step: frame features averaged over time, class prompts through the text tower, CE on
scaled cosines, AdamW; every parameter trains; under torch.autocast bf16 when `bf16`. With `compile`
the step runs under torch.compile, and eagerly where compiling fails (the JSON says which ran).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common import hf_clip, projected  # noqa: E402  (benchmarks/common.py; imports no JAX)


def _namespace(d):
  return types.SimpleNamespace(**{k: _namespace(v) if isinstance(v, dict) else v for k, v in d.items()})


def measure(spec: dict) -> dict:
  arch = _namespace(spec['arch'])
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  model = hf_clip(arch, spec['seed']).to(device).train()
  o = spec['optim']
  opt = torch.optim.AdamW(model.parameters(), lr=o['lr'], betas=(o['b1'], o['b2']), eps=o['eps'],
                          weight_decay=o['weight_decay'])
  v, t, b, c = arch.vision, arch.text, spec['batch'], spec['num_classes']
  gen = torch.Generator(device='cpu').manual_seed(1)
  video = torch.randn((b, v.num_frames, 3, v.image_size, v.image_size), generator=gen).to(device)
  labels = torch.randint(0, c, (b,), generator=gen).to(device)
  ids = torch.zeros((c, t.context_length), dtype=torch.long)
  ids[:, 0] = t.eot_id - 1
  ids[:, 1:6] = torch.randint(1, t.eot_id - 1, (c, 5), generator=gen)
  ids[:, 6] = t.eot_id
  ids = ids.to(device)

  def loss_fn():
    with torch.autocast(device, dtype=torch.bfloat16, enabled=spec['bf16']):
      frames = projected(model.get_image_features(pixel_values=video.flatten(0, 1)))
      vid = frames.view(b, v.num_frames, -1).mean(1)
      cls = projected(model.get_text_features(input_ids=ids))
      logits = model.logit_scale.exp() * F.normalize(vid.float(), dim=-1) @ F.normalize(cls.float(), dim=-1).T
      return F.cross_entropy(logits, labels)

  def one_step(fn):
    loss = fn()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss

  def sync():
    if device == 'cuda':
      torch.cuda.synchronize()

  fn, compiled, compile_error = loss_fn, False, None
  start = time.perf_counter()
  if spec.get('compile'):
    try:
      fn = torch.compile(loss_fn)
      one_step(fn)  # Compiles here; a failure falls back to eager.
      sync()
      compiled = True
    except Exception as e:  # noqa: BLE001 (any compiler failure: report it and time eager)
      fn, compile_error = loss_fn, f'{type(e).__name__}: {str(e)[:300]}'
  compile_s = time.perf_counter() - start
  if device == 'cuda':
    torch.cuda.reset_peak_memory_stats()
  times = []
  for i in range(spec['warmup'] + spec['iters']):
    sync()
    start = time.perf_counter()
    loss = one_step(fn)
    sync()
    if i >= spec['warmup']:
      times.append(time.perf_counter() - start)
  peak = torch.cuda.max_memory_allocated() if device == 'cuda' else None
  n_params = sum(p.numel() for p in model.parameters())
  step_s = statistics.median(times)
  return {
      'impl': 'pytorch', 'mode': 'full', 'remat': False, 'batch': b, 'dtype': 'bfloat16' if spec['bf16'] else 'float32',
      'autocast_bf16': spec['bf16'], 'torch': torch.__version__, 'torch_device': device,
      'torch_compile': compiled, 'torch_compile_error': compile_error, 'trainable_params': n_params,
      'frozen_params': 0, 'optimizer_state_floats': 2 * n_params, 'step_flops': None, 'forward_flops': None,
      'train_step_over_forward': None, 'compile_s': compile_s, 'step_s': step_s, 'step_s_all': times,
      'clips_per_s': b / step_s, 'peak_memory_mib': peak / 2 ** 20 if peak else None,
      'peak_memory_source': 'torch.cuda.max_memory_allocated' if peak else 'unavailable', 'temp_memory_mib': None,
      'loss': float(loss.detach()),
  }


if __name__ == '__main__':
  print(json.dumps(measure(json.loads(sys.argv[1]))))
