"""What the config dataclasses of the models share: one strict dict translation, one block range.

Configs travel as JSON (a checkpoint's config.json, the metadata of adapters.safetensors) and as
ml_collections sections (config.msta, config.lora, config.adaptformer). `from_dict` is the one way in:
an unknown key is an error that names it and the known ones, a value whose type is not its field's
(bools for ints, strings for numbers, NaN or infinite floats) is an error naming the field, lists
become tuples where the field is a tuple, nested configs are rebuilt, and keys left out take the field
defaults. `to_dict` is the inverse.
Adapter configs also validate themselves when constructed, so no caller has to remember to.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar('C', bound='DictConfig')


class DictConfig:
  """Mixin for frozen dataclasses: strict `from_dict`, `to_dict`."""

  @classmethod
  def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
      raise ValueError(f'unknown {cls.__name__} keys {unknown}; known: {sorted(fields)}')
    kwargs = {}
    for key, value in d.items():
      default = fields[key].default
      check_type(f'{cls.__name__}.{key}', value, default)
      if isinstance(default, DictConfig) and isinstance(value, Mapping):
        value = type(default).from_dict(value)
      elif isinstance(default, tuple) and isinstance(value, (list, tuple)):
        value = tuple(value)
      kwargs[key] = value
    return cls(**kwargs)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def check_type(name: str, value: Any, default: Any) -> None:
  """Raises ValueError unless `value` has the type of the field default `default` (ints are floats;
  floats are finite; tuple items have the type of the default's items). None defaults take anything."""
  if default is None or default is dataclasses.MISSING:
    return
  if isinstance(default, DictConfig):
    ok = isinstance(value, (Mapping, type(default)))
  elif isinstance(default, tuple):
    ok = isinstance(value, (list, tuple))
    if ok and default:
      for i, item in enumerate(value):
        check_type(f'{name}[{i}]', item, default[0])
  elif isinstance(default, bool):
    ok = isinstance(value, bool)
  elif isinstance(default, (int, float)):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        isinstance(default, float) or isinstance(value, int))
    if ok and not math.isfinite(value):
      raise ValueError(f'{name}={value!r}: must be a finite number')
  else:
    ok = isinstance(value, type(default))
  if not ok:
    raise ValueError(f'{name}={value!r}: expected {type(default).__name__}, got {type(value).__name__}')


class AdapterConfig(DictConfig):
  """Mixin for an adapter family's config: fields `first_block` / `last_block` (1-based, inclusive),
  `validate()` run on construction."""

  def __post_init__(self) -> None:
    self.validate()
    for f in dataclasses.fields(self):  # Widths, ranks, kernels are counts (`blocks` checks the block range).
      value = getattr(self, f.name)
      if f.name not in ('first_block', 'last_block') and isinstance(value, int) and not isinstance(
          value, bool) and value < 1:
        raise ValueError(f'{type(self).__name__}.{f.name}={value}: must be >= 1')

  def validate(self) -> None:
    """Raises ValueError naming the field; checks that need the tower's depth are `blocks`'."""

  def blocks(self, layers: int) -> list[int]:
    """0-based indices of the blocks that carry the method in a tower with `layers` blocks."""
    first, last = self.first_block, self.last_block
    if not 1 <= first <= last <= layers:
      raise ValueError(f'{type(self).__name__}: blocks {first}..{last} must lie in 1..{layers}')
    return list(range(first - 1, last))
