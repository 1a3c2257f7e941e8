"""ViCLIP state dicts (InternVideo's .pth, or the .safetensors of its HF repository; loading.py reads them).

Keys `vision_encoder.*` / `text_encoder.*` / `temp` are renamed to the canonical keys of checkpoints.py:
the vision tower's 3D patch embedding (temporal kernel 1) becomes a 2D one, and the temperature becomes
CLIP's log logit scale. Heads are width / 64, as ViCLIP uses; every other dimension comes from tensor
shapes. Mean and std are ImageNet's, the video mode is joint space-time.
"""
from __future__ import annotations

import numpy as np

from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip


def to_canonical(sd: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
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


def matches(sd: dict[str, np.ndarray]) -> bool:
  return any(k.startswith('vision_encoder.') for k in sd)


def from_state_dict(sd: dict[str, np.ndarray], source: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """A ViCLIP state dict (torch or safetensors) -> (config, canonical tensors)."""
  canon = to_canonical(sd, source)
  cfg = ckpt.config_from_canonical(canon, heads_vision=None, heads_text=None, video_mode='joint',
                                   mean=clip.IMAGENET_MEAN, std=clip.IMAGENET_STD, source=source)
  return cfg, canon

