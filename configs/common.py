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
