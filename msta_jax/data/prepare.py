"""Makes sure a config's dataset exists: generated datasets are built on first use, real ones must
have been built with `python -m msta_jax.tools.build` (their absence is reported with instructions
when the split is opened)."""
from __future__ import annotations

import os

from absl import logging

from msta_jax import paths
from msta_jax.data import synthetic


def _data_dir(data_cfg) -> str:
  """A local path, or a URL TFDS writes to itself (gs://...; file:// becomes its path: msta_jax.paths)."""
  return paths.local_or_url(os.path.expanduser(data_cfg.data_dir))


def generator_args(data_cfg) -> dict[str, int]:
  """config.data.generator_args 'k=v,...' (integers) for generated datasets, e.g. 'test_per_class=4'."""
  out = {}
  for item in filter(None, data_cfg.generator_args.split(',')):
    key, _, value = item.partition('=')
    try:
      out[key.strip()] = int(value)
    except ValueError as e:
      raise ValueError(f'config.data.generator_args: {item!r} is not key=integer') from e
  return out


def dataset_name(data_cfg) -> str:
  """The built dataset's folder under data_dir (the synthetic set: one folder per seed and sizes)."""
  if data_cfg.dataset == 'synthetic':
    return os.path.join('synthetic', synthetic.Spec(seed=data_cfg.seed, **generator_args(data_cfg)).name)
  return data_cfg.name


def ensure(data_cfg) -> None:
  if data_cfg.dataset == 'synthetic':
    from msta_jax.data.builders import synthetic as builder_lib  # Lazy: TFDS builders import TensorFlow.
    builder = builder_lib.build(_data_dir(data_cfg), seed=data_cfg.seed, **generator_args(data_cfg))
    logging.info('synthetic dataset (seed %d) at %s', data_cfg.seed, builder.data_dir)
