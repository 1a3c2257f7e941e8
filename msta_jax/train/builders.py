"""Config -> objects: the model, its backbone weights, the optimizer. Shared by the trainer and tools."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import optax

from msta_jax import models
from msta_jax.train import partition

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def msta_config(config: ml_collections.ConfigDict) -> models.MSTAConfig | None:
  c = config.msta
  if not c.enabled:
    return None
  fields = {f.name for f in dataclasses.fields(models.MSTAConfig)}
  cfg = models.MSTAConfig(**{k: v for k, v in c.items() if k in fields})
  cfg.validate()
  return cfg


def dtype(config: ml_collections.ConfigDict):
  if config.model.dtype not in DTYPES:
    raise ValueError(f'config.model.dtype={config.model.dtype!r}; allowed: {sorted(DTYPES)}')
  return DTYPES[config.model.dtype]


def architecture(config: ml_collections.ConfigDict) -> models.ModelConfig:
  """The named architecture with the config's frames, resolution and drop path."""
  arch = models.get_config(config.model.name)
  return arch.replace(vision=dataclasses.replace(arch.vision, num_frames=config.model.num_frames,
                                                 image_size=config.model.image_size),
                      drop_path=config.model.drop_path)


def build_model(config: ml_collections.ConfigDict, arch: models.ModelConfig | None = None, *,
                adapters: bool = True) -> models.CLIP:
  """The model of `config` (adapters included unless `adapters=False`); no weights."""
  return models.get_model(arch or architecture(config), dtype=dtype(config), remat=config.model.remat,
                          msta=msta_config(config) if adapters else None)


def load_backbone(config: ml_collections.ConfigDict, rng: jax.Array) -> tuple[models.ModelConfig, dict]:
  """Backbone weights: `config.model.init` through models.load, or a seeded random init."""
  if config.model.init:
    model, params = models.load(config.model.init, num_frames=config.model.num_frames,
                                image_size=config.model.image_size)
    return model.cfg.replace(drop_path=config.model.drop_path), params
  arch = architecture(config)
  return arch, models.init_params(models.get_model(arch), rng)


def build_optimizer(config: ml_collections.ConfigDict, labels: dict,
                    steps_per_epoch: int) -> optax.GradientTransformation:
  """AdamW (warm-up and cosine decay counted in epochs, the authors' recipe) on the trainable leaves
  of `labels`, set_to_zero on the frozen ones."""
  o = config.optim
  total = max(int(round(o.epochs * steps_per_epoch)), 1)
  warmup = min(int(round(o.warmup_epochs * steps_per_epoch)), total - 1)
  if o.schedule == 'cosine':
    lr = optax.warmup_cosine_decay_schedule(0.0, o.lr, max(warmup, 0), total, end_value=0.0)
  elif o.schedule == 'constant':
    lr = optax.join_schedules([optax.linear_schedule(0.0, o.lr, max(warmup, 1)), optax.constant_schedule(o.lr)],
                              [max(warmup, 1)])
  else:
    raise ValueError(f"config.optim.schedule={o.schedule!r}; allowed: ('cosine', 'constant')")
  tx = optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
  if o.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
  return partition.make_optimizer(labels, tx)
