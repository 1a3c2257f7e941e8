"""Config -> objects: the model, its backbone weights, the optimizer. Shared by the trainer and tools."""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
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
  arch = arch.replace(vision=dataclasses.replace(arch.vision, num_frames=config.model.num_frames,
                                                 image_size=config.model.image_size),
                      drop_path=config.model.drop_path)
  return arch.replace(video_mode=config.model.video_mode) if config.model.video_mode else arch


def peft_configs(config: ml_collections.ConfigDict) -> dict:
  """LoRA / AdaptFormer configs of `config` (only those enabled)."""
  out = {}
  if config.lora.enabled:
    out['lora'] = models.LoRAConfig(rank=config.lora.rank, alpha=config.lora.alpha, first_block=config.lora.first_block,
                                    last_block=config.lora.last_block, targets=tuple(config.lora.targets))
    out['lora'].validate()
  if config.adaptformer.enabled:
    a = config.adaptformer
    out['adaptformer'] = models.AdaptFormerConfig(bottleneck=a.bottleneck, scale=a.scale, first_block=a.first_block,
                                                  last_block=a.last_block)
  return out


def build_model(config: ml_collections.ConfigDict, arch: models.ModelConfig | None = None, *,
                adapters: bool = True) -> models.CLIP:
  """The model of `config` (its new modules included unless `adapters=False`); no weights."""
  extra = dict(msta=msta_config(config), **peft_configs(config)) if adapters else {}
  return models.get_model(arch or architecture(config), dtype=dtype(config), remat=config.model.remat, **extra)


def load_backbone(config: ml_collections.ConfigDict, rng: jax.Array) -> tuple[models.ModelConfig, dict]:
  """Backbone weights: `config.model.init` through models.load, or a seeded random init."""
  if config.model.init:
    model, params = models.load(os.path.expanduser(config.model.init), num_frames=config.model.num_frames,
                                image_size=config.model.image_size, video_mode=config.model.video_mode or None)
    return model.cfg.replace(drop_path=config.model.drop_path), params
  arch = architecture(config)
  model = models.get_model(arch)
  return arch, jax.device_get(jax.jit(lambda r: models.init_params(model, r))(rng))


def learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """Linear warm-up then cosine decay to 0 (or constant), both counted in epochs."""
  o = config.optim
  total = max(int(round(o.epochs * steps_per_epoch)), 1)
  if config.get('total_steps'):
    total = config.total_steps
  warmup = max(min(int(round(o.warmup_epochs * steps_per_epoch)), total - 1), 0)
  if o.schedule == 'cosine':
    return optax.warmup_cosine_decay_schedule(0.0, o.lr, warmup, total, end_value=0.0)
  return optax.join_schedules([optax.linear_schedule(0.0, o.lr, max(warmup, 1)), optax.constant_schedule(o.lr)],
                              [max(warmup, 1)])


def build_optimizer(config: ml_collections.ConfigDict, labels: dict,
                    steps_per_epoch: int) -> optax.GradientTransformation:
  """AdamW (the authors' recipe) on the trainable leaves of `labels`, set_to_zero on the frozen ones."""
  o = config.optim
  tx = optax.adamw(learning_rate(config, steps_per_epoch), b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay)
  if o.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
  return partition.make_optimizer(labels, tx)


# --------------------------------------------------------------------------------------------------
# Validation before any device work, mesh and parameter placement.
# --------------------------------------------------------------------------------------------------

_CHOICES = {
    'model.dtype': tuple(DTYPES), 'optim.schedule': ('cosine', 'constant'),
    'eval.resize': ('short_side', 'squash'),
}


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks values a locked config cannot check by itself; errors name the key and what is allowed."""
  from msta_jax.train import losses
  for key, allowed in _CHOICES.items():
    section, field = key.split('.')
    if config[section][field] not in allowed:
      raise ValueError(f'config.{key}={config[section][field]!r}; allowed: {allowed}')
  losses.get_loss(config.loss.name)
  if config.model.video_mode not in ('', 'frame_average', 'joint'):
    raise ValueError(f"config.model.video_mode={config.model.video_mode!r}; allowed: '', 'frame_average', 'joint'")
  if config.model.init and not os.path.exists(os.path.expanduser(config.model.init)):
    raise FileNotFoundError(
        f'config.model.init={config.model.init!r}: no such file or directory. Download the backbone weights '
        '(BUILD.md, "Pretrained weights") and pass --config.model.init=PATH, or train on a random init with '
        "--config.model.init=''")
  if config.model.name not in models.CONFIGS and not config.model.init:
    raise ValueError(f'config.model.name={config.model.name!r}; known: {sorted(models.CONFIGS)} '
                     '(or set config.model.init to a checkpoint)')
  msta_config(config)
  for i, rule in enumerate(config.freeze):
    if len(rule) != 2 or rule[1] not in ('trainable', 'frozen'):
      raise ValueError(f"config.freeze[{i}]={rule!r}; expected (regex, 'trainable' | 'frozen')")
  for i, rule in enumerate(config.sharding):
    if len(rule) != 2:
      raise ValueError(f'config.sharding[{i}]={rule!r}; expected (regex, partition spec tuple)')
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
  import re
  from flax import traverse_util
  from jax.sharding import NamedSharding, PartitionSpec
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
