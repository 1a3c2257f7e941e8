"""Helpers shared by config files. Imports nothing of msta_jax (configs stay data)."""
from __future__ import annotations

from typing import Any

import ml_collections


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses 'k1=v1,k2=v2' typed by the defaults; unknown keys are errors.

  Example: parse_arg('shots=4,backbone=clip', shots=16, backbone='viclip', runlocal=False).
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    if '=' not in item:
      raise ValueError(f'config argument {item!r} is not key=value; known keys: {sorted(defaults)}')
    key, value = (s.strip() for s in item.split('=', 1))
    if key not in defaults:
      raise ValueError(f'unknown config argument {key!r}; known: {sorted(defaults)}')
    kind = type(defaults[key])
    if kind is bool:
      if value.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'config argument {key}={value!r} is not a boolean')
      out[key] = value.lower() in ('true', '1')
    else:
      try:
        out[key] = kind(value)
      except ValueError as e:
        raise ValueError(f'config argument {key}={value!r} is not a {kind.__name__}') from e
  return out


def choice(name: str, value: Any, allowed: tuple) -> Any:
  if value not in allowed:
    raise ValueError(f'config argument {name}={value!r}; allowed: {allowed}')
  return value


SIZES = ('full', 'tiny')


def apply_size(c: ml_collections.ConfigDict, size: str) -> ml_collections.ConfigDict:
  """`size=tiny`: the smoke preset of a real-data config. One argument sets every linked override a tiny
  random backbone needs (model, resolution, frames, adapter blocks and widths, lambda, batches, a short
  schedule, single-view evaluation), so a dataset can be tried end to end in minutes on a CPU before a
  real run; results are meaningless as accuracies (docs/data.md, "A first run")."""
  choice('size', size, SIZES)
  if size == 'full':
    return c
  c.model.update(name='tiny_viclip', image_size=32, num_frames=8, init='')
  c.msta.update(first_block=1, last_block=2, bottleneck=32, scale=0.1)
  c.lora.update(first_block=1, last_block=2)
  c.adaptformer.update(first_block=1, last_block=2, bottleneck=16)
  c.batch_size = 4
  c.mesh = (('data', 1), ('model', 1))  # One device: batches of 4 divide it, whatever the host has.
  c.optim.update(epochs=2.0, warmup_epochs=0.5)
  c.eval.update(batch_size=4, every_epochs=1.0, clips=1, crops=1)
  c.data.num_threads = 2
  return c
