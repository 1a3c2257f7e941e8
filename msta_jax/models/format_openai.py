"""OpenAI CLIP checkpoints (the release's TorchScript .pt, or a torch.save state dict of the same model).

OpenAI's state-dict names ARE the canonical keys of checkpoints.py; only the attributes its JIT archive
keeps beside the weights are dropped. Heads are width / 64, as OpenAI CLIP uses; every other dimension
comes from tensor shapes.
"""
from __future__ import annotations

import numpy as np

from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip

# Attributes OpenAI's JIT archive keeps beside the weights (its build_model deletes them too).
_EXTRAS = ('input_resolution', 'context_length', 'vocab_size')


def matches(sd: dict[str, np.ndarray]) -> bool:
  return 'visual.conv1.weight' in sd and 'token_embedding.weight' in sd


def from_state_dict(sd: dict[str, np.ndarray], source: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """A torch state dict of OpenAI CLIP -> (config, canonical tensors)."""
  canon = {k: v for k, v in sd.items() if k not in _EXTRAS}
  cfg = ckpt.config_from_canonical(canon, heads_vision=None, heads_text=None, video_mode='frame_average',
                                   source=source)
  return cfg, canon
