"""Where arrays live: the ('data', 'model') mesh of a config, the shardings of parameters and optimizer
state, and host copies of arrays that may span hosts.

`config.sharding` has two parts:
- `rules`: ordered (regex, partition spec) pairs on '/'-joined parameter paths (first full match wins),
  e.g. (('visual/transformer/.*/kernel', (None, 'model')),);
- `preset`: what every parameter that no rule matches gets, from PRESETS:
  'replicated' (a copy on every device) or
  'fsdp' (big_vision's fully sharded data parallel: a leaf of at least `fsdp_min_bytes` is split over the
  'data' axis along its largest dimension that the axis divides; smaller leaves are replicated).
Optimizer moments follow their parameter (an Adam moment of a sharded kernel is sharded the same way),
so `fsdp` shards parameters and optimizer state alike; everything else in the state is replicated.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from flax import traverse_util
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec


def make_mesh(config: ml_collections.ConfigDict) -> jax.sharding.Mesh:
  """Mesh ('data', 'model') from config.mesh; -1 takes the remaining devices. Fixed sizes whose
  product is below the device count use the first devices (e.g. one device for a reference run).
  Any batch size works on it (msta_jax.train.batching pads)."""
  spec = dict(config.mesh)
  n = jax.device_count()
  known = int(np.prod([s for s in spec.values() if s != -1]))
  shape = {k: (n // known if s == -1 else s) for k, s in spec.items()}
  used = int(np.prod(list(shape.values())))
  if used > n or (-1 in spec.values() and used != n):
    raise ValueError(f'config.mesh={config.mesh!r} does not fit {n} devices')
  if used < n and jax.process_count() > 1:
    raise ValueError(f'config.mesh={config.mesh!r} uses {used} of {n} devices; multi-process runs use all')
  # Auto axes: XLA propagates shardings through the model (no sharding-in-types annotations needed).
  auto = jax.sharding.AxisType.Auto
  return jax.make_mesh((shape['data'], shape['model']), ('data', 'model'), axis_types=(auto, auto),
                       devices=jax.devices()[:used])


def _replicated(shape: tuple[int, ...], itemsize: int, mesh: jax.sharding.Mesh, cfg) -> tuple:
  del shape, itemsize, mesh, cfg
  return ()


def _fsdp(shape: tuple[int, ...], itemsize: int, mesh: jax.sharding.Mesh, cfg) -> tuple:
  """'data' on the largest dimension it divides, for leaves of at least cfg.fsdp_min_bytes."""
  n = mesh.shape['data']
  if n == 1 or int(np.prod(shape)) * itemsize < cfg.fsdp_min_bytes:
    return ()
  for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):  # Largest first; ties: the first.
    if shape[dim] % n == 0:
      return (None,) * dim + ('data',)
  return ()


# Registry: config.sharding.preset -> spec(shape, itemsize, mesh, config.sharding) for unmatched leaves.
PRESETS: dict[str, Callable[..., tuple]] = {'replicated': _replicated, 'fsdp': _fsdp}


def check(cfg: ml_collections.ConfigDict) -> list[tuple[re.Pattern, tuple]]:
  """config.sharding's rules compiled; raises naming the key on a bad preset or rule."""
  if not isinstance(cfg, (ml_collections.ConfigDict, dict)) or 'preset' not in cfg:
    raise ValueError(f"config.sharding={cfg!r}; expected a ConfigDict with preset ({sorted(PRESETS)}), rules "
                     "((regex, partition spec), ...) and fsdp_min_bytes (configs/base.py)")
  if cfg['preset'] not in PRESETS:
    raise ValueError(f'config.sharding.preset={cfg["preset"]!r}; allowed: {sorted(PRESETS)}')
  compiled = []
  for i, rule in enumerate(cfg['rules']):
    if len(rule) != 2 or not isinstance(rule[0], str):
      raise ValueError(f'config.sharding.rules[{i}]={rule!r}; expected (regex, partition spec tuple)')
    compiled.append((re.compile(rule[0]), tuple(rule[1])))
  return compiled


def param_shardings(tree: dict, cfg: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> dict:
  """NamedShardings of a parameter tree: config.sharding's rules, else its preset."""
  compiled, preset = check(cfg), PRESETS[cfg.preset]
  out = {}
  for path, leaf in traverse_util.flatten_dict(tree, sep='/').items():
    shape = tuple(leaf.shape)
    spec = next((s for rx, s in compiled if rx.fullmatch(path)), None)
    if spec is None:
      spec = preset(shape, np.dtype(leaf.dtype).itemsize, mesh, cfg)
    for dim, axis in enumerate(spec):
      if axis is not None and (dim >= len(shape) or shape[dim] % mesh.shape[axis]):
        raise ValueError(f'config.sharding.rules put {path} {shape} dim {dim} on mesh axis {axis!r} '
                         f'of size {mesh.shape[axis]}: not divisible')
    out[path] = NamedSharding(mesh, PartitionSpec(*spec))
  return traverse_util.unflatten_dict(out, sep='/')


def _dict_keys(path) -> tuple:
  return tuple(p.key for p in path if isinstance(p, jax.tree_util.DictKey))


def like_params(tree: Any, param_sh: dict, mesh: jax.sharding.Mesh) -> Any:
  """Shardings for an optimizer state (or any tree holding copies of parameters): a leaf whose dict-key
  path ends with a parameter's path and has its shape takes that parameter's sharding; the rest
  (step counters, scalars) is replicated."""
  flat = {k: s for k, s in traverse_util.flatten_dict(param_sh).items()}
  repl = NamedSharding(mesh, PartitionSpec())

  def pick(path, leaf):
    keys = _dict_keys(path)
    for start in range(len(keys)):
      sh = flat.get(keys[start:])
      if sh is not None:
        spec = sh.spec
        fits = len(spec) <= len(leaf.shape) and all(
            a is None or leaf.shape[d] % mesh.shape[a] == 0 for d, a in enumerate(spec))
        return sh if fits else repl
    return repl
  return jax.tree_util.tree_map_with_path(pick, tree)


def state_shardings(abstract_state: dict, trainable_sh: dict, mesh: jax.sharding.Mesh) -> dict:
  """The train state's shardings: trainable parameters as placed, optimizer moments like their
  parameters, step and rng replicated."""
  repl = NamedSharding(mesh, PartitionSpec())
  return {'trainable': trainable_sh, 'opt': like_params(abstract_state['opt'], trainable_sh, mesh),
          'step': repl, 'rng': repl}


def to_host(tree: Any) -> Any:
  """Host numpy copies of a tree of arrays, also of arrays that span hosts.

  Call it on EVERY process (then let one write): an array with shards on other hosts is gathered with
  `process_allgather`, a collective every process must join. Replicated or local arrays are copied
  without communication; the choice depends only on the (global) sharding, so all processes agree.
  """
  leaves, treedef = jax.tree.flatten(tree)
  spread = [i for i, x in enumerate(leaves)
            if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated)]
  spread_set = set(spread)
  out = [None if i in spread_set else np.asarray(jax.device_get(x)) for i, x in enumerate(leaves)]
  if spread:  # One collective for all of them.
    for i, x in zip(spread, multihost_utils.process_allgather([leaves[i] for i in spread], tiled=True)):
      out[i] = np.asarray(x)
  return jax.tree.unflatten(treedef, out)


def is_sharded(x: jax.Array) -> bool:
  """Whether an array is split between devices (not a full copy on each)."""
  return not x.sharding.is_fully_replicated


def describe(shardings: dict[str, Any]) -> str:
  """'name: S of N leaves split' per tree of shardings, for the run's log (what a preset did)."""
  parts = []
  for name, tree in shardings.items():
    leaves = jax.tree.leaves(tree)
    parts.append(f'{name}: {sum(not s.is_fully_replicated for s in leaves)} of {len(leaves)} leaves split')
  return ', '.join(parts)
