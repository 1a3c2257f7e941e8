"""Where arrays live: the ('data', 'model') mesh of a config and the parameter shardings of its rules."""
from __future__ import annotations

import re

import jax
import ml_collections
import numpy as np
from flax import traverse_util
from jax.sharding import NamedSharding, PartitionSpec


def make_mesh(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """Mesh ('data', 'model') from config.mesh; -1 takes the remaining devices. Fixed sizes whose
  product is below the device count use the first devices (e.g. one device for a reference run)."""
  spec = dict(config.mesh)
  n = jax.device_count()
  known = int(np.prod([s for s in spec.values() if s != -1]))
  shape = {k: (n // known if s == -1 else s) for k, s in spec.items()}
  used = int(np.prod(list(shape.values())))
  if used > n or (-1 in spec.values() and used != n):
    raise ValueError(f'config.mesh={config.mesh!r} does not fit {n} devices')
  if used < n and jax.process_count() > 1:
    raise ValueError(f'config.mesh={config.mesh!r} uses {used} of {n} devices; multi-process runs use all')
  for b in (config.batch_size, config.eval.batch_size):
    if b % shape['data']:
      raise ValueError(f'batch {b} is not divisible by the {shape["data"]} devices of the data axis')
  # Auto axes: XLA propagates shardings through the model (no sharding-in-types annotations needed).
  auto = jax.sharding.AxisType.Auto
  return jax.make_mesh((shape['data'], shape['model']), ('data', 'model'), axis_types=(auto, auto),
                       devices=jax.devices()[:used])


def param_shardings(tree: dict, rules, mesh: jax.sharding.Mesh) -> dict:
  """NamedShardings from ordered (regex, spec) rules on '/' paths; unmatched leaves are replicated."""
  compiled = [(re.compile(rx), tuple(spec)) for rx, spec in rules]
  out = {}
  for path, leaf in traverse_util.flatten_dict(tree, sep='/').items():
    spec = next((s for rx, s in compiled if rx.fullmatch(path)), ())
    for dim, axis in enumerate(spec):
      if axis is not None and (dim >= len(leaf.shape) or leaf.shape[dim] % mesh.shape[axis]):
        raise ValueError(f'config.sharding puts {path} {tuple(leaf.shape)} dim {dim} on mesh axis {axis!r} '
                         f'of size {mesh.shape[axis]}: not divisible')
    out[path] = NamedSharding(mesh, PartitionSpec(*spec))
  return traverse_util.unflatten_dict(out, sep='/')
