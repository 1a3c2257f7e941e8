"""The ViT-B/16 GEMMs of 8 images (1576 tokens) on CPU: XLA's default (YNNPACK), XLA with
msta_jax.compilation's forward options (Eigen), and PyTorch, in one process. It explains
clip_forward.py's ratio: the forward is ~90% these four GEMMs.

    USE_TF=0 .venv/bin/python benchmarks/cpu_gemm.py                 # all cores
    USE_TF=0 taskset -c 0 .venv/bin/python benchmarks/cpu_gemm.py    # one core (PyTorch follows affinity)

Each round times every implementation back to back (rotating who goes first); a call is 12 GEMMs of
one shape, dispatched together; the median of --iters rounds after 2 warm-up rounds is reported.
Prints a table, then one JSON line.
"""
from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import time

os.environ.setdefault('USE_TF', '0')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from msta_jax import compilation  # noqa: E402

from common import cores, cpu_name  # noqa: E402  (benchmarks/common.py)

_ITERS = flags.DEFINE_integer('iters', 7, 'Timed rounds; the median is reported.')
_TOKENS = flags.DEFINE_integer('tokens', 8 * 197, 'Rows of the activations (images x tokens).')
SHAPES = {'in_proj': (768, 2304), 'out_proj': (768, 768), 'c_fc': (768, 3072), 'c_proj': (3072, 768)}
REPS = 12  # One per ViT-B block.


def main(argv):
  del argv
  import torch
  rng = np.random.default_rng(0)
  rows, table = _TOKENS.value, {}
  for name, (k, n) in SHAPES.items():
    a = rng.standard_normal((rows, k), dtype=np.float32)
    w = rng.standard_normal((k, n), dtype=np.float32)
    aj, wj = jax.device_put(a), jax.device_put(w)
    at, wt = torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(w.T))
    lowered = jax.jit(lambda a, w: a @ w).lower(aj, wj)
    xla = {'xla_default': lowered.compile(), 'xla_forward_options': lowered.compile(
        compiler_options=compilation.forward_options())}

    def ours(fn):
      def call():
        out = [fn(aj, wj) for _ in range(REPS)]
        jax.block_until_ready(out)
      return call

    def pytorch():
      with torch.inference_mode():
        for _ in range(REPS):
          torch.nn.functional.linear(at, wt)

    impls = {'pytorch': pytorch, **{key: ours(fn) for key, fn in xla.items()}}
    times = {key: [] for key in impls}
    for i in range(2 + _ITERS.value):
      order = list(impls.items())
      for key, fn in order[i % len(order):] + order[:i % len(order)]:
        start = time.perf_counter()
        fn()
        if i >= 2:
          times[key].append(time.perf_counter() - start)
    flops = 2.0 * rows * k * n * REPS
    table[name] = {key: flops / statistics.median(t) / 1e9 for key, t in times.items()}

  keys = ['pytorch', 'xla_default', 'xla_forward_options']
  print(f'{"GEMM":9s} {"shape":>16s} ' + ' '.join(f'{k + " GFLOP/s":>27s}' for k in keys))
  for name, row in table.items():
    k, n = SHAPES[name]
    print(f'{name:9s} {f"{rows}x{k}x{n}":>16s} ' + ' '.join(f'{row[key]:27.0f}' for key in keys))
  print(json.dumps({'benchmark': 'cpu_gemm', 'date': datetime.datetime.now().isoformat(timespec='seconds'),
                    'cpu': cpu_name(), 'cores': cores(), 'torch_threads': torch.get_num_threads(),
                    'jax': jax.__version__, 'torch': torch.__version__, 'rows': rows,
                    'forward_options': compilation.forward_options(), 'gflops': table}))


if __name__ == '__main__':
  app.run(main)
