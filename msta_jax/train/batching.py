"""Global batch sizes that work on any device count.

The recipe's global batch (`config.batch_size`, `config.eval.batch_size`) is what the model learns from;
the device count must not change it. So a step's batch is the recipe's batch PADDED with `mask`=0 rows up
to the next multiple of

    unit = lcm(data_axis_size x accum_steps, process_count)

(accum_steps is 1 for evaluation): every device of the 'data' axis then holds the same number of rows in
every micro-batch, and every process feeds the same number. The losses divide by the sum of the mask and
evaluation drops rows whose `index` is -1, so padding changes no number: global batch 32 on 64 chips
trains on 32 clips, 32 rows of zeros ride along. When the data axis divides the batch, nothing is padded.

The contrastive loss compares every caption with every clip of the batch (no mask): padding it would
change the loss, so a padded contrastive batch is refused with the batch size to use instead.
"""
from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from msta_jax.train import step as step_lib


def padded_size(batch: int, data_size: int, process_count: int = 1, accum_steps: int = 1) -> int:
  """The smallest multiple of lcm(data_size * accum_steps, process_count) that holds `batch` rows."""
  unit = math.lcm(data_size * accum_steps, process_count)
  return -(-batch // unit) * unit


def train_size(config, mesh: jax.sharding.Mesh, process_count: int) -> int:
  """The padded global train batch of `config` on `mesh`; refuses what padding cannot make exact."""
  accum = config.optim.accum_steps
  size = padded_size(config.batch_size, mesh.shape['data'], process_count, accum)
  if size != config.batch_size and config.loss.name == 'contrastive':
    exact = padded_size(1, mesh.shape['data'], process_count, accum)
    raise ValueError(f'config.batch_size={config.batch_size} does not split evenly over {mesh.shape["data"]} '
                     f'data devices x {accum} accumulation steps, and the contrastive loss cannot be padded '
                     f'(every clip is a negative of every caption): use a multiple of {exact}')
  return size


def eval_size(config, mesh: jax.sharding.Mesh, process_count: int) -> int:
  """The padded global eval batch (evaluation pads with `index` -1 already; nothing else changes)."""
  return padded_size(config.eval.batch_size, mesh.shape['data'], process_count)


def pad(local: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
  """A process-local batch with zero rows (mask 0) appended up to `rows`; unchanged if already there."""
  have = len(local['mask'])
  if have == rows:
    return local
  return {k: np.concatenate([np.asarray(v), np.zeros((rows - have,) + np.shape(v)[1:], np.asarray(v).dtype)])
          for k, v in local.items()}


def abstract_train_batch(config, arch, mesh: jax.sharding.Mesh, process_count: int) -> dict[str, Any]:
  """The padded global train batch as sharded ShapeDtypeStructs (what the train step is compiled for)."""
  return step_lib.abstract_batch(arch, train_size(config, mesh, process_count),
                                 captions=config.loss.name == 'contrastive', sharding=NamedSharding(mesh, P('data')))


def abstract_eval_batch(config, arch, mesh: jax.sharding.Mesh, process_count: int) -> dict[str, Any]:
  """The padded global eval batch (all views of a video together, uint8 pixels as the loader sends them)
  as sharded ShapeDtypeStructs."""
  b, v = eval_size(config, mesh, process_count), config.eval.clips * config.eval.crops
  s = arch.vision
  sh = NamedSharding(mesh, P('data'))
  return {'video': jax.ShapeDtypeStruct((b, v, s.num_frames, s.image_size, s.image_size, 3), np.uint8, sharding=sh),
          'label': jax.ShapeDtypeStruct((b,), np.int32, sharding=sh),
          'index': jax.ShapeDtypeStruct((b,), np.int32, sharding=sh),
          'mask': jax.ShapeDtypeStruct((b,), np.float32, sharding=sh)}
