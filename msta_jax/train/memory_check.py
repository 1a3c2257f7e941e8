"""Out of memory, before step 1: the compiled train step's footprint against the device's limit.

An allocation failure deep in the first step (or an hour later, in the first evaluation) says little;
XLA already knows the step's footprint after compiling it. The limit is the device's
`memory_stats()['bytes_limit']` where the backend reports one (GPU, TPU), else
`config.memory_limit_bytes` (0: no check, e.g. on CPU hosts).
"""
from __future__ import annotations

import jax

from msta_jax import compilation

KNOBS = ('config.batch_size (the footprint of activations scales with the per-device batch)',
         'config.model.remat=True (recompute block activations in the backward pass)',
         "config.model.dtype='bfloat16' (half-size activations)",
         "config.mesh with a 'model' axis > 1 and config.sharding rules (split parameters and optimizer state)")


def device_limit(configured: int) -> tuple[int | None, str]:
  """(bytes one device may hold, where that number came from)."""
  stats = getattr(jax.local_devices()[0], 'memory_stats', lambda: None)() or {}
  if stats.get('bytes_limit'):
    return int(stats['bytes_limit']), f"{jax.local_devices()[0].device_kind} memory_stats()['bytes_limit']"
  return (int(configured), 'config.memory_limit_bytes') if configured else (None, 'none known')


def check(compiled, configured_limit: int, batch_size: int) -> str:
  """Raises MemoryError naming the footprint, the limit and the knobs when the step cannot fit; else
  returns a one-line note."""
  need, how = compilation.memory_bytes(compiled)
  limit, source = device_limit(configured_limit)
  if need is None or limit is None:
    return f'train step memory check skipped (footprint {how}, limit {source})'
  line = f'train step needs {need / 2**20:.1f} MiB per device ({how}), limit {limit / 2**20:.1f} MiB ({source})'
  if need > limit:
    raise MemoryError(f'{line}: it cannot fit, not starting (global batch {batch_size}). Lower the footprint with: '
                      + '; '.join(KNOBS) + '. There is no gradient accumulation in this trainer.')
  return line
