"""A run's config -> the objects the trainer builds from it: the model, its backbone weights, the
optimizer and its schedule; and `validate`, the check of everything a locked config cannot check itself.
Shared by the trainer, the protocol runner's preflight, the summary tool and the benchmarks."""
from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections
import optax

from msta_jax import models
from msta_jax import paths
from msta_jax.models import precision
from msta_jax.data import test_sampling
from msta_jax.train import losses
from msta_jax.train import partition
from msta_jax.train import schedules
from msta_jax.train import sharding

DTYPES = precision.COMPUTE_DTYPES  # float16 is refused with its reason (models/precision.py).


def dtype(config: ml_collections.ConfigDict):
  return precision.compute_dtype(config.model.dtype)


def architecture(config: ml_collections.ConfigDict) -> models.ModelConfig:
  """The named architecture with the config's frames, resolution and drop path."""
  arch = models.get_config(config.model.name)
  arch = arch.replace(vision=dataclasses.replace(arch.vision, num_frames=config.model.num_frames,
                                                 image_size=config.model.image_size),
                      drop_path=config.model.drop_path)
  return arch.replace(video_mode=config.model.video_mode) if config.model.video_mode else arch


def build_model(config: ml_collections.ConfigDict, arch: models.ModelConfig | None = None, *,
                adapters: bool = True) -> models.CLIP:
  """The model of `config` (its new modules included unless `adapters=False`); no weights."""
  extra = models.adapter_configs(config) if adapters else {}
  return models.get_model(arch or architecture(config), dtype=dtype(config), remat=config.model.remat, **extra)


RANDOM = ('', 'random')  # config.model.init values meaning a seeded random init (one word everywhere).


def weights_path(config: ml_collections.ConfigDict) -> str:
  """The backbone checkpoint config.model.init names, '' for a random init."""
  return '' if config.model.init in RANDOM else paths.local_or_url(os.path.expanduser(config.model.init))


def load_backbone(config: ml_collections.ConfigDict, rng: jax.Array) -> tuple[models.ModelConfig, dict]:
  """Backbone weights: `config.model.init` through models.load, or a seeded random init."""
  if weights_path(config):
    model, params = models.load(weights_path(config), num_frames=config.model.num_frames,
                                image_size=config.model.image_size, video_mode=config.model.video_mode or None)
    return model.cfg.replace(drop_path=config.model.drop_path), params
  arch = architecture(config)
  model = models.get_model(arch)
  return arch, jax.device_get(jax.jit(lambda r: models.init_params(model, r))(rng))


def learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """The lr of each optimiser update: `config.optim.schedule` (train/schedules.py) over epochs x steps."""
  return schedules.update_schedule(config.optim, steps_per_epoch, config.get('total_steps') or 0)


def build_optimizer(config: ml_collections.ConfigDict, labels: dict,
                    steps_per_epoch: int) -> optax.GradientTransformation:
  """AdamW (the authors' recipe) on the trainable leaves of `labels`, set_to_zero on the frozen ones."""
  o = config.optim
  tx = optax.adamw(learning_rate(config, steps_per_epoch), b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
  if o.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
  return partition.make_optimizer(labels, tx)


# --------------------------------------------------------------------------------------------------
# Validation before any device work.
# --------------------------------------------------------------------------------------------------

_CHOICES = {
    'optim.schedule': tuple(schedules.SCHEDULES),
    'eval.resize': ('short_side', 'squash'), 'eval.view_fusion': tuple(losses.VIEW_FUSIONS),
    'eval.test_sampler': tuple(test_sampling.SAMPLERS),
}


class WeightsMissingError(FileNotFoundError):
  """The backbone weights a config names are not there. The message names the flags of the command the
  user ran: `python -m msta_jax.main` passes its own; the protocol runner rebuilds it with its flags."""

  def __init__(self, init: str, path_flag: str, random_flag: str):
    self.init = init
    super().__init__(self.message(path_flag, random_flag))

  def message(self, path_flag: str, random_flag: str) -> str:
    """The error said with another command's flags."""
    return (f'backbone weights {self.init!r}: no such file or directory. Download them (BUILD.md, "Pretrained '
            f'weights") and pass {path_flag}, or train on a random init with {random_flag} (a real-data config '
            'also takes the init=random or size=tiny argument)')


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks values a locked config cannot check by itself; errors name the key and what is allowed."""
  dtype(config)
  for key, allowed in _CHOICES.items():
    section, field = key.split('.')
    if config[section][field] not in allowed:
      raise ValueError(f'config.{key}={config[section][field]!r}; allowed: {allowed}')
  losses.get_loss(config.loss.name)
  if config.model.video_mode not in ('', 'frame_average', 'joint'):
    raise ValueError(f"config.model.video_mode={config.model.video_mode!r}; allowed: '', 'frame_average', 'joint'")
  if weights_path(config) and not paths.resolve(weights_path(config)).exists():  # Also a gs:// URL.
    raise WeightsMissingError(config.model.init, '--config.model.init=PATH', '--config.model.init=random')
  if config.model.name not in models.CONFIGS and not weights_path(config):
    raise ValueError(f'config.model.name={config.model.name!r}; known: {sorted(models.CONFIGS)} '
                     '(or set config.model.init to a checkpoint)')
  adapters = models.adapter_configs(config)  # Unknown keys and bad values raise, naming the section.
  if config.model.name in models.CONFIGS:  # Blocks vs depth now, not after building the model.
    layers = models.get_config(config.model.name).vision.layers
    for name, cfg in adapters.items():
      if not 1 <= cfg.first_block <= cfg.last_block <= layers:
        raise ValueError(f'config.{name}.first_block..last_block = {cfg.first_block}..{cfg.last_block}; '
                         f'{config.model.name} has blocks 1..{layers} (a smaller model: the size=tiny argument '
                         'of a real-data config sets them together)')
  partition.check_rules(config.freeze)
  sharding.check(config.sharding)
  if not isinstance(config.optim.accum_steps, int) or config.optim.accum_steps < 1:
    raise ValueError(f'config.optim.accum_steps={config.optim.accum_steps!r}; expected an integer >= 1')
  if config.optim.accum_steps > 1 and config.loss.name == 'contrastive':
    raise ValueError('config.optim.accum_steps > 1 with the contrastive loss: every clip of the batch is a '
                     'negative of every caption, so micro-batches would change the loss; use accum_steps=1')
  names = [n for n, _ in config.mesh]
  if sorted(names) != ['data', 'model'] or sum(1 for _, s in config.mesh if s == -1) > 1:
    raise ValueError(f"config.mesh={config.mesh!r}; expected (('data', n), ('model', m)) with at most one -1")
  d = config.data
  if not d.train_split and not d.test_splits:
    raise ValueError('config.data has neither train_split nor test_splits: nothing to do')
  if config.batch_size < 1 or config.eval.batch_size < 1:
    raise ValueError('config.batch_size and config.eval.batch_size must be positive')
  if len(config.eval.base_novel) not in (0, 2) or any(s not in d.test_splits for s in config.eval.base_novel):
    raise ValueError(f'config.eval.base_novel={config.eval.base_novel!r} must name two of config.data.test_splits')
