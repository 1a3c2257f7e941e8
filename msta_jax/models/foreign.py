"""OpenAI CLIP (.pt TorchScript or state dict) and ViCLIP (.pth, .safetensors, HF-style dir) readers.

Both are renamed to the canonical keys of checkpoints.py. Heads are width / 64, as OpenAI CLIP and
ViCLIP use; every other dimension comes from tensor shapes.
"""
from __future__ import annotations

import os

import numpy as np

from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip
from msta_jax.models import torch_pickle

# Attributes OpenAI's JIT archive keeps beside the weights (its build_model deletes them too).
_OPENAI_EXTRAS = ('input_resolution', 'context_length', 'vocab_size')


def _strip_prefix(sd: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  if sd and all(k.startswith(prefix) for k in sd):
    return {k[len(prefix):]: v for k, v in sd.items()}
  return sd


def viclip_to_canonical(sd: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
  """ViCLIP keys (`vision_encoder.*`, `text_encoder.*`, `temp`) -> canonical keys."""
  out = {}
  for k, v in sd.items():
    if k.startswith('vision_encoder.'):
      name = 'visual.' + k[len('vision_encoder.'):]
      if name == 'visual.conv1.weight':
        if v.ndim != 5 or v.shape[2] != 1:
          raise ckpt.CheckpointError(f'{source}: vision_encoder.conv1.weight has shape {v.shape}; '
                                     'expected [width, 3, 1, patch, patch] (temporal kernel 1)')
        v = v[:, :, 0]
      out[name] = v
    elif k.startswith('text_encoder.'):
      out[k[len('text_encoder.'):]] = v
    elif k == 'temp':
      out['logit_scale'] = np.log(1.0 / np.asarray(v, np.float64)).astype(np.float32)
    else:
      out[k] = v  # Left as is, so the strict fill names it as unexpected.
  return out


def _is_viclip(sd: dict) -> bool:
  return any(k.startswith('vision_encoder.') for k in sd)


def _is_openai(sd: dict) -> bool:
  return 'visual.conv1.weight' in sd and 'token_embedding.weight' in sd


def read(path: str, fmt: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """-> (config, canonical tensors) for 'torch_zip', 'torch_legacy', 'viclip_safetensors', 'viclip_dir'."""
  if fmt == 'torch_legacy':
    raise ckpt.CheckpointError(f'{path}: legacy (pre-1.6, non-zip) torch file; re-save it with a current '
                               'torch.save or convert it to safetensors')
  if fmt == 'viclip_dir':
    path = os.path.join(path, 'model.safetensors')
    fmt = 'viclip_safetensors'
  if fmt == 'viclip_safetensors':
    sd = ckpt.read_safetensors(path)
  else:
    obj, _ = torch_pickle.load(path)
    if isinstance(obj, dict):
      for wrapper in ('model', 'state_dict', 'module'):
        if isinstance(obj.get(wrapper), dict):
          obj = obj[wrapper]
          break
    sd = _strip_prefix(torch_pickle.flatten_state(obj), 'module.')  # DDP-wrapped saves.
  if _is_viclip(sd):
    canon = viclip_to_canonical(sd, path)
    cfg = ckpt.config_from_canonical(canon, heads_vision=None, heads_text=None, video_mode='joint',
                                     mean=clip.IMAGENET_MEAN, std=clip.IMAGENET_STD, source=path)
    return cfg, canon
  if _is_openai(sd):
    canon = {k: v for k, v in sd.items() if k not in _OPENAI_EXTRAS}
    cfg = ckpt.config_from_canonical(canon, heads_vision=None, heads_text=None, video_mode='frame_average',
                                     source=path)
    return cfg, canon
  sample = ', '.join(sorted(sd)[:5])
  raise ckpt.CheckpointError(f'{path}: neither an OpenAI CLIP nor a ViCLIP checkpoint (keys start: '
                             f'{sample}); expected visual.* + token_embedding.* or vision_encoder.* keys')
