"""`models.load` / `models.save`: format detection, strict filling, optional resizing."""
from __future__ import annotations

import os
import jax.numpy as jnp
import numpy as np
from absl import logging

from msta_jax import paths
from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip
from msta_jax.models import format_hf
from msta_jax.models import format_openai
from msta_jax.models import format_viclip
from msta_jax.models import registry
from msta_jax.models import resize
from msta_jax.models import torch_pickle
from msta_jax.models.errors import brief

_ACCEPTED = ('an HF CLIP directory (config.json + model.safetensors), a msta_jax directory written by '
             'models.save, an OpenAI CLIP .pt, or a ViCLIP .pth/.safetensors')


def _shapes(cfg: clip.ModelConfig) -> dict:
  return registry.param_shapes(registry.get_model(cfg))


def _detect(path: str) -> str:
  """Names the format of `path` ('own' or a key of _READERS), or raises an error that says what is accepted."""
  where = paths.resolve(path)  # Local, or a URL (gs://bucket/clip): read through epath.
  if not where.exists():
    raise FileNotFoundError(f'{path}: no such file or directory; models.load takes {_ACCEPTED}')
  if where.is_dir():
    cfg_path = os.path.join(path, 'config.json')
    if not (where / 'config.json').exists():
      raise ckpt.CheckpointError(f'{path}: directory has no config.json; models.load takes {_ACCEPTED}')
    meta = ckpt.read_json(cfg_path)
    if meta.get('format') == ckpt.FORMAT_NAME:
      return 'own'
    if meta.get('model_type') == 'clip' or 'vision_config' in meta:
      return 'hf'
    architectures = meta.get('architectures', [])
    if isinstance(architectures, list) and 'ViCLIP' in architectures:
      return 'safetensors'
    raise ckpt.CheckpointError(f'{cfg_path}: neither an HF CLIP config (model_type "clip"), a ViCLIP '
                               f'config nor a msta_jax config; models.load takes {_ACCEPTED}')
  with where.open('rb') as f:
    magic = f.read(8)
  if magic[:2] == b'PK':
    return 'torch'  # OpenAI .pt (TorchScript) or a torch.save .pth: told apart by their keys.
  if path.endswith('.safetensors'):
    return 'safetensors'
  if magic[:1] == b'\x80':
    raise ckpt.CheckpointError(f'{path}: legacy (pre-1.6, non-zip) torch file; re-save it with a current '
                               'torch.save or convert it to safetensors')
  raise ckpt.CheckpointError(f'{path}: unrecognised file (not a zip archive, pickle or safetensors); '
                             f'models.load takes {_ACCEPTED}')


def _from_state_dict(sd: dict[str, np.ndarray], path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  for fmt in (format_viclip, format_openai):
    if fmt.matches(sd):
      return fmt.from_state_dict(sd, path)
  sample = ', '.join(sorted(sd)[:5])
  raise ckpt.CheckpointError(f'{path}: neither an OpenAI CLIP nor a ViCLIP checkpoint (keys start: '
                             f'{sample}); expected visual.* + token_embedding.* or vision_encoder.* keys')


def _read_torch(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  return _from_state_dict(torch_pickle.load_state_dict(path), path)


def _read_safetensors(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """A .safetensors file (ViCLIP's HF release) or the directory holding it as model.safetensors."""
  if paths.resolve(path).is_dir():
    path = os.path.join(path, 'model.safetensors')
  return _from_state_dict(ckpt.read_safetensors(path), path)


# Foreign formats: path -> (config, canonical tensors), filled strictly by checkpoints.canonical_to_params.
_READERS = {'hf': format_hf.read, 'safetensors': _read_safetensors, 'torch': _read_torch}


def read_checkpoint(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray] | None, dict | None]:
  """-> (config, canonical tensors, or None with ready params for the own format)."""
  fmt = _detect(path)
  if fmt == 'own':
    cfg, params = ckpt.read_own(path, _shapes)
    return cfg, None, params
  try:
    cfg, canon = _READERS[fmt](path)
  except ckpt.CheckpointError:
    raise
  except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:  # Tensors that do not fit
    # together (HF q/k/v of different shapes, ...): the file is not a checkpoint of any model we read.
    raise ckpt.CheckpointError(f'{path}: inconsistent checkpoint ({brief(e)})') from e
  return cfg, canon, None


def load(path: str, *, num_frames: int | None = None, image_size: int | None = None,
         video_mode: str | None = None, dtype=jnp.float32, remat: bool = False, adapters: str | None = None):
  """Loads any supported checkpoint strictly. Returns (model, params), params as float32 numpy.

  Args:
    path: checkpoint file or directory (format detected from its contents).
    num_frames: resize the temporal embedding (ViCLIP) to this many frames: linear interpolation
      when longer, the first n frames when shorter, as ViCLIP's own loader does.
    image_size: resize the spatial positional embedding (bicubic, CLS row kept).
    video_mode: override 'joint' / 'frame_average' (e.g. ViCLIP weights encoding frames alone).
    dtype: compute dtype of the returned model; parameters stay float32.
    adapters: an `adapters.safetensors` written by the trainer: its adapter config is applied and its
      tensors (adapters, or any parameters the run trained) replace / extend the backbone's, strictly.
  """
  cfg, canon, params = read_checkpoint(path)
  if video_mode is not None and video_mode != cfg.video_mode:
    if video_mode == 'joint' and canon is not None and 'visual.temporal_positional_embedding' not in canon:
      canon['visual.temporal_positional_embedding'] = np.zeros(
          (cfg.vision.num_frames, cfg.vision.width), np.float32)
      logging.info('%s: no temporal embedding; joint mode starts it at zeros', path)
    elif params is not None:
      raise ckpt.CheckpointError(f'{path}: video_mode cannot change for a msta_jax checkpoint')
    elif video_mode == 'frame_average':
      canon.pop('visual.temporal_positional_embedding', None)
    cfg = cfg.replace(video_mode=video_mode)
  if canon is not None:
    params = ckpt.canonical_to_params(canon, _shapes(cfg), path)
  cfg, params = resize.resize_params(cfg, params, num_frames=num_frames, image_size=image_size,
                                     source=path)
  if adapters is None:
    return registry.get_model(cfg, dtype=dtype, remat=remat), params
  return _with_adapters(cfg, params, adapters, dtype, remat)


# What the trainer writes into an adapters file's metadata (train/outputs.py) beside one section per
# adapter family; anything else is a file we did not write.
_ADAPTER_META_KEYS = ('method', 'model', 'freeze')


def _adapter_configs(meta: dict, path: str) -> dict:
  """The adapter configs of an adapters file, strictly: unknown keys, wrong types, NaN and
  out-of-range values raise a CheckpointError naming the file."""
  unknown = sorted(str(k) for k in meta if k not in _ADAPTER_META_KEYS and k not in registry.ADAPTERS)
  if unknown:
    raise ckpt.CheckpointError(f'{path}: unknown adapters metadata keys {unknown}; known: '
                               f'{sorted(_ADAPTER_META_KEYS + tuple(registry.ADAPTERS))}')
  for name in registry.ADAPTERS:
    if meta.get(name) is not None and not isinstance(meta[name], dict):
      raise ckpt.CheckpointError(f'{path}: adapters metadata {name!r} is a {type(meta[name]).__name__}, '
                                 'not an object')
  try:
    return registry.adapter_configs(meta)
  except (TypeError, ValueError) as e:
    raise ckpt.CheckpointError(f'{path}: bad adapter config in its metadata ({e})') from e


def _with_adapters(cfg: clip.ModelConfig, params: dict, path: str, dtype, remat: bool):
  """Backbone params overlaid with a trained-weights file; shapes checked against the adapted model."""
  tensors, meta = ckpt.read_adapters(path)
  model = registry.get_model(cfg, dtype=dtype, remat=remat, **_adapter_configs(meta, path))
  shapes = registry.param_shapes(model)
  want = ckpt.flat_paths(shapes)
  flat = ckpt.flat_paths(params)
  unexpected = sorted(k for k in tensors if k not in want)
  mis = [f'{k}: file {tensors[k].shape}, model {tuple(want[k].shape)}' for k in sorted(tensors)
         if k in want and tuple(tensors[k].shape) != tuple(want[k].shape)]
  missing = sorted(k for k in want if k not in flat and k not in tensors)
  if unexpected or mis or missing:
    raise ckpt.CheckpointError(ckpt.mismatch_message(path, missing, unexpected, mis))
  merged = {**flat, **{k: v.astype(want[k].dtype) for k, v in tensors.items()}}  # float32 (read_adapters)
  return model, ckpt.fill_flat(merged, shapes, path)


def save(path: str, model: clip.CLIP, params: dict) -> None:
  """Writes a directory that `load` reads back exactly (config.json + model.safetensors)."""
  ckpt.write_own(path, model.cfg, params)
