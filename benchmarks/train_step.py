"""MSTA train step against full fine-tuning: step time, clips/s, XLA FLOPs, MFU, compiled memory.

    USE_TF=0 .venv/bin/python benchmarks/train_step.py                            # CPU: batch 1
    python benchmarks/train_step.py --batch=32 --config.model.dtype=bfloat16      # GPU / TPU, as is
    ... --compiler_options=xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED   # CPU remat memory

--config defaults to configs/ssv2_fewshot.py; --config.KEY=VALUE overrides any field of it.

The step is the trainer's own (`train.step.make_train_step`) on the config's model (default
configs/ssv2_fewshot.py: ViCLIP-B/16, 8x224, 174 SSv2 classes, CE + consistency loss), built the way
`msta_jax.tools.summary` builds it, with random weights and a synthetic in-memory batch: no dataset,
no TensorFlow. Variants (--variants, MODE:REMAT):
- msta: adapters train, the backbone is frozen (config.freeze); the backward pass starts at the first
  adapted block.
- full: no adapters, every parameter trains (ViFi-CLIP-style full fine-tuning).
For each: XLA's FLOPs of one step and of the forward loss, step time (median), clips/s, achieved
FLOP/s, compiled peak memory and temporaries (activations and workspace) from XLA's memory analysis,
optimizer floats, and two utilisations against the device's peak:
- `mfu` = analytic model FLOPs / step time / peak. Model FLOPs: models/flops.py (matmuls, 2 per
  multiply-add; per block L (8 D^2 + 4 D M) + 4 L^2 D; a train step is 3x the forward for full
  fine-tuning, forward + 1x the blocks after the first adapted one + 2x the adapters for MSTA). Remat's
  recomputation is not model work and is not counted.
- `xla_mfu` = XLA's cost-analysis FLOPs of the same mode's no-remat step / step time / peak. On GPU XLA
  does not count cuDNN's attention custom calls (~25% of ViCLIP-B/16's joint forward), so it reads low.
The peak is --peak_tflops, else the table `_PEAKS` (dense, by device kind: H100 SXM / PCIe / NVL, H200,
A100, TPUs), else an estimate for CPUs (cores x clock x FMA width; see `device_peak`).

With --pytorch, each `full` variant without remat is also timed in HF transformers' PyTorch CLIP (the
same architecture, random weights) by benchmarks/pytorch_step.py in a process of its own, run before
any JAX step so that it has the device to itself: the ViFi-CLIP step (frame features averaged over
time, class prompts through the text tower, CE on scaled cosines, AdamW, every parameter trains), under
`torch.autocast` in bf16 when the config's dtype is bfloat16, under torch.compile with --torch_compile
where that works. It needs a frame_average (CLIP) config, e.g.
`--config=configs/ssv2_fewshot.py:backbone=clip --config.loss.consistency_weight=0 --variants=full:off`.

Prints a table, then one JSON line.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault('USE_TF', '0')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from msta_jax import compilation  # noqa: E402
from msta_jax import models  # noqa: E402
from msta_jax.data import classes  # noqa: E402
from msta_jax.models import flops as model_flops_lib  # noqa: E402
from msta_jax.train import from_config, losses, partition, step, tasks  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs',
                           'ssv2_fewshot.py'), 'Config file (overrides: --config.KEY=VALUE).', lock_config=True)
_BATCH = flags.DEFINE_integer('batch', 0, 'Global batch (clips); 0: 1 on CPU, the config\'s elsewhere.')
_VARIANTS = flags.DEFINE_list('variants', ['msta:off', 'msta:on', 'full:off', 'full:on'],
                               'MODE:REMAT pairs to measure; MODE msta (adapters) or full (full '
                               'fine-tuning), REMAT off or on.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed steps per variant (after compilation).')
_ITERS = flags.DEFINE_integer('iters', 3, 'Timed steps per variant; the median is reported.')
_PEAK = flags.DEFINE_float('peak_tflops', 0.0, 'Device peak TFLOP/s for MFU (0: table / CPU estimate).')
_NUM_CLASSES = flags.DEFINE_integer('num_classes', 0, '0: the config dataset\'s class count.')
_COMPILER_OPTIONS = flags.DEFINE_list(
    'compiler_options', [], 'XLA options KEY=VALUE for our compilations, e.g. '
    'xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED (XLA:CPU\'s default scheduler does not '
    'trade memory, so remat saves little there without it).')
_PYTORCH = flags.DEFINE_bool('pytorch', False, 'Also time the full fine-tuning step in HF PyTorch CLIP '
                             '(benchmarks/pytorch_step.py, its own process).')
_TORCH_COMPILE = flags.DEFINE_bool('torch_compile', True, 'PyTorch step under torch.compile (eager where it fails).')

# Dense peaks per chip (TFLOP/s, no sparsity) by device kind and compute dtype, first match wins: bf16
# tensor cores; fp32 matmuls run as TF32 on NVIDIA under JAX's default precision. jax's device_kind
# reads e.g. 'NVIDIA H100 80GB HBM3' (SXM), 'NVIDIA H100 PCIe', 'NVIDIA H100 NVL', 'NVIDIA H200',
# 'NVIDIA A100-SXM4-80GB'. The PCIe H100 is clocked lower than the SXM one (756 vs 989 dense bf16).
_PEAKS = [
    (r'H100.*PCIe', {'bfloat16': 756.0, 'float32': 378.0}),
    (r'H100.*NVL', {'bfloat16': 835.0, 'float32': 418.0}),
    (r'H200|H100', {'bfloat16': 989.0, 'float32': 494.0}),
    (r'A100', {'bfloat16': 312.0, 'float32': 156.0}),
    (r'TPU v4', {'bfloat16': 275.0, 'float32': 275.0}),
    (r'TPU v5 lite|TPU v5e', {'bfloat16': 197.0, 'float32': 197.0}),
    (r'TPU v5p|TPU v5$', {'bfloat16': 459.0, 'float32': 459.0}),
    (r'TPU v6', {'bfloat16': 918.0, 'float32': 918.0}),
]


def device_peak(dtype_name: str) -> tuple[float, str]:
  """(peak FLOP/s of one device, where the figure comes from)."""
  if _PEAK.value:
    return _PEAK.value * 1e12, '--peak_tflops'
  dev = jax.devices()[0]
  for pattern, peaks in _PEAKS:
    if re.search(pattern, dev.device_kind):
      peak = peaks.get(dtype_name, peaks['bfloat16'])
      return peak * 1e12, f'table: {dev.device_kind} {dtype_name} dense'
  if dev.platform == 'cpu':
    flags_line = mhz = ''
    try:
      for line in open('/proc/cpuinfo'):
        if line.startswith('flags') and not flags_line:
          flags_line = line
        if line.startswith('cpu MHz') and not mhz:
          mhz = line.split(':')[1].strip()
    except OSError:
      pass
    # FP32 FLOPs per cycle per core: two FMA ports x vector lanes x 2.
    per_cycle = 64 if 'avx512f' in flags_line else 32 if 'fma' in flags_line else 8
    ghz = float(mhz) / 1000 if mhz else 2.0
    cores = len(os.sched_getaffinity(0))
    return cores * ghz * 1e9 * per_cycle, f'estimate: {cores} cores x {ghz:.2f} GHz x {per_cycle} FP32 FLOP/cycle'
  return float('nan'), f'unknown device {dev.device_kind}: pass --peak_tflops'


def compiler_options() -> dict | None:
  out = {}
  for item in _COMPILER_OPTIONS.value:
    key, sep, value = item.partition('=')
    if not sep:
      raise app.UsageError(f'--compiler_options: {item!r} is not KEY=VALUE')
    low = value.lower()
    out[key] = True if low == 'true' else False if low == 'false' else int(value) if value.isdigit() else value
  return out or None


def variant_config(base, mode: str, remat: bool, batch: int):
  c = base.copy_and_resolve_references()
  c.model.remat = remat
  c.batch_size = batch
  if mode == 'full':
    c.msta.enabled = False
    c.freeze = (('.*', 'trainable'),)
  elif mode != 'msta':
    raise app.UsageError(f'--modes: unknown mode {mode!r} (msta, full)')
  return c


def synthetic(tree, seed: int, num_classes: int, context: int, eot: int):
  """Concrete arrays for the shapes of step.abstract_batch / abstract_task: random video, labels,
  prompts with an EOT."""
  rng = np.random.default_rng(seed)

  def make(path, sds):
    name = path[-1].key
    if name == 'label':
      return jnp.asarray(rng.integers(0, num_classes, sds.shape), sds.dtype)
    if name == 'mask':
      return jnp.ones(sds.shape, sds.dtype)
    if name == 'class_ids':
      ids = np.zeros(sds.shape, np.int32)
      ids[:, 0] = eot - 1
      ids[:, 1:6] = rng.integers(1, eot - 1, (sds.shape[0], 5))
      ids[:, 6] = eot
      return jnp.asarray(ids)
    return jnp.asarray(rng.standard_normal(sds.shape), sds.dtype)
  return jax.tree_util.tree_map_with_path(make, tree)


def mib(x) -> float | None:
  return None if x is None else x / 2 ** 20


def measure(config, mode: str, remat: bool, num_classes: int, forward_flops: dict) -> dict:
  model = from_config.build_model(config)
  rng = jax.random.PRNGKey(config.seed)
  params = jax.jit(lambda r: models.init_params(model, r))(rng)
  labels = partition.param_labels(params, config.freeze)
  trainable, frozen = partition.split(params, labels)
  tx = from_config.build_optimizer(config, labels, steps_per_epoch=100)
  state = jax.jit(lambda t, f: step.init_state(t, f, tx, rng))(trainable, frozen)
  batch_abs = step.abstract_batch(model.cfg, config.batch_size, captions=config.loss.name == 'contrastive')
  task_abs = step.abstract_task(model.cfg, num_classes, descriptions=bool(config.loss.consistency_weight))
  t = model.cfg.text
  batch = synthetic(batch_abs, 1, num_classes, t.context_length, t.eot_id)
  task = synthetic(task_abs, 2, num_classes, t.context_length, t.eot_id)
  loss_fn = losses.get_loss(config.loss.name)
  kw = tasks.loss_kwargs(config)

  if mode not in forward_flops:  # Forward FLOPs do not depend on remat; compiled once per mode.
    def forward(params, batch, task):
      return loss_fn(model, params, batch, task, rng=rng, train=False, **kw)[0]
    forward_flops[mode] = compilation.flops(
        jax.jit(forward).lower(params, batch, task).compile(compiler_options=compiler_options()))

  start = time.perf_counter()
  train = jax.jit(step.make_train_step(model=model, tx=tx, labels=labels, loss_fn=loss_fn, loss_kwargs=kw),
                  donate_argnums=0).lower(state, frozen, batch, task).compile(compiler_options=compiler_options())
  compile_s = time.perf_counter() - start
  peak, source = compilation.memory_bytes(train)
  mem = train.memory_analysis()
  temp = getattr(mem, 'temp_size_in_bytes', None) if mem is not None else None
  flops = compilation.flops(train)
  msta = models.adapter_configs(config).get('msta')
  others = set(models.adapter_configs(config)) - {'msta'}
  analytic = None if others or config.loss.name != 'classification' else model_flops_lib.classification_step(
      model.cfg, config.batch_size, num_classes, msta if mode == 'msta' else None)

  times = []
  for i in range(_WARMUP.value + _ITERS.value):
    start = time.perf_counter()
    state, metrics = train(state, frozen, batch, task)
    jax.block_until_ready((state, metrics))
    if i >= _WARMUP.value:
      times.append(time.perf_counter() - start)
  loss = float(metrics['loss'])
  if not np.isfinite(loss):
    raise FloatingPointError(f'{mode} remat={remat}: loss {loss}')
  return {
      'impl': 'ours', 'mode': mode, 'remat': remat, 'batch': config.batch_size, 'dtype': config.model.dtype,
      'trainable_params': partition.count(trainable), 'frozen_params': partition.count(frozen),
      'optimizer_state_floats': step.optimizer_floats(state['opt']),
      'step_flops': flops, 'forward_flops': forward_flops[mode],
      'model_flops': analytic['step'] if analytic else None,
      'model_forward_flops': analytic['forward'] if analytic else None,
      'train_step_over_forward': flops / forward_flops[mode] if forward_flops[mode] else None,
      'compile_s': compile_s, 'step_s': statistics.median(times), 'step_s_all': times,
      'clips_per_s': config.batch_size / statistics.median(times),
      'peak_memory_mib': mib(peak), 'peak_memory_source': source, 'temp_memory_mib': mib(temp),
      'loss': loss,
  }


def measure_pytorch(config, num_classes: int) -> dict:
  """benchmarks/pytorch_step.py in a child process on the shapes and optimizer of `config`."""
  arch = from_config.architecture(config)
  if arch.video_mode != 'frame_average':
    raise app.UsageError('--pytorch needs a frame_average (CLIP) config, e.g. '
                         '--config=configs/ssv2_fewshot.py:backbone=clip')
  o = config.optim
  spec = {'arch': arch.to_dict(), 'batch': config.batch_size, 'num_classes': num_classes, 'seed': config.seed,
          'optim': {k: o[k] for k in ('lr', 'b1', 'b2', 'eps', 'weight_decay')},
          'bf16': config.model.dtype == 'bfloat16', 'compile': _TORCH_COMPILE.value,
          'warmup': _WARMUP.value, 'iters': _ITERS.value}
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pytorch_step.py')
  done = subprocess.run([sys.executable, script, json.dumps(spec)], capture_output=True, text=True)
  lines = done.stdout.strip().splitlines()
  if done.returncode or not lines:
    raise RuntimeError(f'{script} failed (rc {done.returncode}):\n{done.stderr[-3000:]}')
  return json.loads(lines[-1])


def parse_variants(values: list[str]) -> list[tuple[str, bool]]:
  out = []
  for v in values:
    mode, _, remat = v.partition(':')
    if mode not in ('msta', 'full') or remat not in ('off', 'on'):
      raise app.UsageError(f'--variants: {v!r} is not MODE:REMAT with MODE msta|full and REMAT off|on')
    out.append((mode, remat == 'on'))
  return out


def main(argv):
  del argv
  base = _CONFIG.value
  variants = parse_variants(_VARIANTS.value)
  batch = _BATCH.value or (1 if jax.default_backend() == 'cpu' else base.batch_size)
  num_classes = _NUM_CLASSES.value or len(classes.names(base.data.dataset))
  peak, peak_source = device_peak(base.model.dtype)
  rows, forward_flops = [], {}
  if _PYTORCH.value and ('full', False) in variants:  # First: the device is PyTorch's alone.
    rows.append(measure_pytorch(variant_config(base, 'full', False, batch), num_classes))
    print(f'measured pytorch full: {rows[-1]["step_s"]:.3f} s/step', flush=True)
  for mode, remat in variants:
    config = variant_config(base, mode, remat, batch)
    rows.append(measure(config, mode, remat, num_classes, forward_flops))
    print(f'measured ours {mode} remat={remat}: {rows[-1]["step_s"]:.3f} s/step', flush=True)
  # Per mode: the analytic model FLOPs and XLA's count of our no-remat step (recomputation is not
  # useful work); PyTorch's step does the same maths, so it is credited with the same figures.
  analytic = {r['mode']: r['model_flops'] for r in rows if r['impl'] == 'ours'}
  xla = {r['mode']: r['step_flops'] for r in rows if r['impl'] == 'ours' and not r['remat']}
  for r in rows:
    r['model_flops'] = analytic.get(r['mode'])
    r['xla_model_flops'] = xla.get(r['mode'], r['step_flops'])
    r['achieved_tflops'] = r['step_flops'] / r['step_s'] / 1e12 if r['step_flops'] else None
    r['mfu'] = r['model_flops'] / r['step_s'] / peak if r['model_flops'] else None
    r['xla_mfu'] = r['xla_model_flops'] / r['step_s'] / peak if r['xla_model_flops'] else None

  def fmt(x, spec):  # '-' where a figure does not exist (PyTorch has no XLA cost analysis).
    return format(x, spec) if x is not None else '-'.rjust(int(spec.split('.')[0]))

  print(f'{"impl":7s} {"mode":5s} {"remat":5s} {"batch":>5s} {"step s":>8s} {"clips/s":>8s} {"TFLOP/step":>10s} '
        f'{"step/fwd":>8s} {"TFLOP/s":>8s} {"MFU":>6s} {"XLA MFU":>7s} {"peak MiB":>9s} {"temp MiB":>9s} {"trainable":>12s} '
        f'{"opt floats":>11s}')
  for r in rows:
    tflop = r['step_flops'] / 1e12 if r['step_flops'] else None
    print(f'{r["impl"]:7s} {r["mode"]:5s} {str(r["remat"]):5s} {r["batch"]:5d} {r["step_s"]:8.3f} '
          f'{r["clips_per_s"]:8.3f} {fmt(tflop, "10.3f")} {fmt(r["train_step_over_forward"], "8.2f")} '
          f'{fmt(r["achieved_tflops"], "8.3f")} {fmt(r["mfu"], "6.1%")} {fmt(r["xla_mfu"], "7.1%")} '
          f'{fmt(r["peak_memory_mib"], "9.0f")} '
          f'{fmt(r["temp_memory_mib"], "9.0f")} {r["trainable_params"]:12,d} {r["optimizer_state_floats"]:11,d}')
  by = {(r['impl'], r['mode'], r['remat']): r for r in rows}
  result = {
      'benchmark': 'train_step', 'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'backend': jax.default_backend(), 'device': jax.devices()[0].device_kind, 'devices': jax.device_count(),
      'jax': jax.__version__, 'model': base.model.name, 'frames': base.model.num_frames,
      'image_size': base.model.image_size, 'dtype': base.model.dtype, 'num_classes': num_classes,
      'batch': batch, 'peak_flops': peak, 'peak_source': peak_source, 'compiler_options': compiler_options(),
      'loadavg_1min': round(os.getloadavg()[0], 2), 'tensorflow_imported': sys.modules.get('tensorflow') is not None,
      'variants': rows,
  }

  def ratio(a, b, key):
    return a[key] / b[key] if a.get(key) and b.get(key) else None

  m, f = by.get(('ours', 'msta', False)), by.get(('ours', 'full', False))
  if m and f:
    result['full_over_msta_step_time'] = ratio(f, m, 'step_s')
    result['full_over_msta_step_flops'] = ratio(f, m, 'step_flops')
    result['full_over_msta_temp_memory'] = ratio(f, m, 'temp_memory_mib')
  for mode in ('msta', 'full'):
    off, on = by.get(('ours', mode, False)), by.get(('ours', mode, True))
    if off and on:
      result[f'{mode}_remat_step_time_ratio'] = ratio(on, off, 'step_s')
      result[f'{mode}_remat_temp_memory_ratio'] = ratio(on, off, 'temp_memory_mib')
  torch_full = by.get(('pytorch', 'full', False))
  if f and torch_full:
    result['full_ours_over_pytorch_throughput'] = ratio(torch_full, f, 'step_s')
  print(json.dumps(result))


if __name__ == '__main__':
  app.run(main)
