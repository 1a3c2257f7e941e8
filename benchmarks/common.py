"""Helpers shared by the benchmark scripts (no flags here: each script owns its command line)."""
from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # benchmarks/pytorch_step.py uses hf_clip in a process without JAX.
  from msta_jax import models


def hf_clip(cfg: 'models.ModelConfig', seed: int):
  """A random HF transformers CLIPModel (eval mode) with the architecture of `cfg` (a ModelConfig or
  anything with its attributes)."""
  import torch
  import transformers
  torch.manual_seed(seed)
  v, t = cfg.vision, cfg.text
  hf_cfg = transformers.CLIPConfig(
      vision_config=dict(hidden_size=v.width, intermediate_size=v.mlp_dim, num_hidden_layers=v.layers,
                         num_attention_heads=v.heads, patch_size=v.patch_size, image_size=v.image_size,
                         hidden_act=cfg.activation, layer_norm_eps=cfg.ln_eps),
      text_config=dict(hidden_size=t.width, intermediate_size=t.mlp_dim, num_hidden_layers=t.layers,
                       num_attention_heads=t.heads, max_position_embeddings=t.context_length,
                       vocab_size=t.vocab_size, eos_token_id=t.eot_id, hidden_act=cfg.activation,
                       layer_norm_eps=cfg.ln_eps),
      projection_dim=cfg.embed_dim)
  return transformers.CLIPModel(hf_cfg).eval()


def projected(out):
  """The tensor of HF CLIP's get_image_features / get_text_features: transformers 4 returns it, 5 returns
  model outputs holding it as pooler_output."""
  return getattr(out, 'pooler_output', out)


def cpu_name() -> str:
  try:
    for line in open('/proc/cpuinfo'):
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def cores() -> int:
  """CPU cores this process may run on."""
  return len(os.sched_getaffinity(0))
