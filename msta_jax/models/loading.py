"""`models.load` / `models.save`: format detection, strict filling, optional resizing."""
from __future__ import annotations

import json
import os
from typing import Callable

import jax.numpy as jnp
import numpy as np
from absl import logging

from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip
from msta_jax.models import resize


def _shapes_fn(dtype=jnp.float32) -> Callable[[clip.ModelConfig], dict]:
  from msta_jax import models
  return lambda cfg: models.param_shapes(models.get_model(cfg, dtype=dtype))


def _detect(path: str) -> str:
  """Names the format of `path`, or raises an error that says what is accepted."""
  accepted = ('an HF CLIP directory (config.json + model.safetensors), a msta_jax directory written '
              'by models.save, an OpenAI CLIP .pt, or a ViCLIP .pth/.safetensors')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no such file or directory; models.load takes {accepted}')
  if os.path.isdir(path):
    cfg_path = os.path.join(path, 'config.json')
    if not os.path.exists(cfg_path):
      raise ckpt.CheckpointError(f'{path}: directory has no config.json; models.load takes {accepted}')
    meta = json.load(open(cfg_path))
    if meta.get('format') == ckpt.FORMAT_NAME:
      return 'own'
    if meta.get('model_type') == 'clip' or 'vision_config' in meta:
      return 'hf'
    if 'ViCLIP' in meta.get('architectures', []):
      return 'viclip_dir'
    raise ckpt.CheckpointError(f'{cfg_path}: neither an HF CLIP config (model_type "clip"), a ViCLIP '
                               f'config nor a msta_jax config; models.load takes {accepted}')
  with open(path, 'rb') as f:
    magic = f.read(8)
  if magic[:2] == b'PK':
    return 'torch_zip'  # OpenAI .pt (TorchScript) or a torch.save .pth: told apart by their records.
  if path.endswith('.safetensors'):
    return 'viclip_safetensors'
  if magic[:1] == b'\x80':
    return 'torch_legacy'
  raise ckpt.CheckpointError(f'{path}: unrecognised file (not a zip archive, pickle or safetensors); '
                             f'models.load takes {accepted}')


def read_checkpoint(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray] | None, dict | None]:
  """-> (config, canonical tensors, or None with ready params for the own format)."""
  fmt = _detect(path)
  if fmt == 'own':
    cfg, params = ckpt.read_own(path, _shapes_fn())
    return cfg, None, params
  if fmt == 'hf':
    cfg, canon = ckpt.read_hf_dir(path)
    return cfg, canon, None
  from msta_jax.models import foreign  # OpenAI / ViCLIP formats.
  cfg, canon = foreign.read(path, fmt)
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
  from msta_jax import models
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
    params = ckpt.canonical_to_params(canon, models.param_shapes(models.get_model(cfg)), path)
  cfg, params = resize.resize_params(cfg, params, num_frames=num_frames, image_size=image_size,
                                     source=path)
  if adapters is None:
    return models.get_model(cfg, dtype=dtype, remat=remat), params
  return _with_adapters(cfg, params, adapters, dtype, remat)


def _with_adapters(cfg: clip.ModelConfig, params: dict, path: str, dtype, remat: bool):
  """Backbone params overlaid with a trained-weights file; shapes checked against the adapted model."""
  import dataclasses
  from msta_jax import models
  tensors, meta = ckpt.read_adapters(path)
  msta = None
  if meta.get('msta'):
    fields = {f.name for f in dataclasses.fields(models.MSTAConfig)}
    msta = models.MSTAConfig(**{k: v for k, v in meta['msta'].items() if k in fields})
  peft = {}
  if meta.get('lora'):
    peft['lora'] = models.LoRAConfig(**{k: tuple(v) if k == 'targets' else v for k, v in meta['lora'].items()
                                        if k != 'enabled'})
  if meta.get('adaptformer'):
    peft['adaptformer'] = models.AdaptFormerConfig(**{k: v for k, v in meta['adaptformer'].items() if k != 'enabled'})
  model = models.get_model(cfg, dtype=dtype, remat=remat, msta=msta, **peft)
  want = ckpt.flat_paths(models.param_shapes(model))
  flat = ckpt.flat_paths(params)
  unexpected = sorted(k for k in tensors if k not in want)
  mis = [f'{k}: file {tensors[k].shape}, model {tuple(want[k].shape)}' for k in sorted(tensors)
         if k in want and tuple(tensors[k].shape) != tuple(want[k].shape)]
  missing = sorted(k for k in want if k not in flat and k not in tensors)
  if unexpected or mis or missing:
    raise ckpt.CheckpointError(ckpt._mismatch_message(path, missing, unexpected, mis))
  merged = {**flat, **{k: v.astype(want[k].dtype) for k, v in tensors.items()}}
  return model, ckpt.fill_flat(merged, models.param_shapes(model), path)


def save(path: str, model: clip.CLIP, params: dict) -> None:
  """Writes a directory that `load` reads back exactly (config.json + model.safetensors)."""
  ckpt.write_own(path, model.cfg, params)
