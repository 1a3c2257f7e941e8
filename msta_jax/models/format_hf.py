"""HF transformers CLIP directories (`CLIPModel.save_pretrained`: config.json + model.safetensors or
pytorch_model.bin), renamed to the canonical keys of checkpoints.py.

HF splits OpenAI's packed q/k/v projection into q_proj, k_proj and v_proj: they are concatenated back;
an incomplete triple stays under its HF names so the strict fill reports it.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from msta_jax import paths
from msta_jax.models import checkpoints as ckpt
from msta_jax.models import clip
from msta_jax.models import torch_pickle

_HF_RENAMES = [
    (r'vision_model\.embeddings\.class_embedding', 'visual.class_embedding'),
    (r'vision_model\.embeddings\.patch_embedding\.weight', 'visual.conv1.weight'),
    (r'vision_model\.embeddings\.position_embedding\.weight', 'visual.positional_embedding'),
    (r'vision_model\.pre_layrnorm\.(weight|bias)', r'visual.ln_pre.\1'),
    (r'vision_model\.post_layernorm\.(weight|bias)', r'visual.ln_post.\1'),
    (r'vision_model\.encoder\.layers\.(\d+)\.(.*)', r'visual.transformer.resblocks.\1.\2'),
    (r'text_model\.embeddings\.token_embedding\.weight', 'token_embedding.weight'),
    (r'text_model\.embeddings\.position_embedding\.weight', 'positional_embedding'),
    (r'text_model\.final_layer_norm\.(weight|bias)', r'ln_final.\1'),
    (r'text_model\.encoder\.layers\.(\d+)\.(.*)', r'transformer.resblocks.\1.\2'),
    (r'logit_scale', 'logit_scale'),
]
_HF_BLOCK_RENAMES = [
    (r'self_attn\.out_proj\.(weight|bias)', r'attn.out_proj.\1'),
    (r'layer_norm1\.(weight|bias)', r'ln_1.\1'),
    (r'layer_norm2\.(weight|bias)', r'ln_2.\1'),
    (r'mlp\.fc1\.(weight|bias)', r'mlp.c_fc.\1'),
    (r'mlp\.fc2\.(weight|bias)', r'mlp.c_proj.\1'),
]


def hf_to_canonical(sd: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """HF CLIPModel state dict -> canonical keys. Unknown keys pass through (and are then unexpected)."""
  out: dict[str, np.ndarray] = {}
  qkv: dict[tuple[str, str], dict[str, np.ndarray]] = {}
  for key, val in sd.items():
    if key == 'visual_projection.weight':
      out['visual.proj'] = ckpt.transpose(val)
      continue
    if key == 'text_projection.weight':
      out['text_projection'] = ckpt.transpose(val)
      continue
    new = key
    for pat, rep in _HF_RENAMES:
      if re.fullmatch(pat, key):
        new = re.sub(pat, rep, key)
        break
    m = re.fullmatch(r'(.*resblocks\.\d+)\.self_attn\.([qkv])_proj\.(weight|bias)', new)
    if m:
      qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = val
      continue
    for pat, rep in _HF_BLOCK_RENAMES:
      new = re.sub(r'(resblocks\.\d+)\.' + pat + '$', r'\1.' + rep.replace('\\1', '\\2'), new)
    out[new] = val
  for (block, kind), parts in qkv.items():
    if set(parts) == {'q', 'k', 'v'}:
      out[f'{block}.attn.in_proj_{kind}'] = np.concatenate([parts['q'], parts['k'], parts['v']], 0)
    else:  # Leave the incomplete parts visible so the strict check names them.
      for n, v in parts.items():
        out[f'{block}.self_attn.{n}_proj.{kind}'] = v
  return out


def _hf_eot_id(text_cfg: dict, vocab_size: int, source: str) -> int:
  eos = _field(text_cfg, 'eos_token_id', int, 49407, source)
  # HF's legacy configs say eos_token_id=2 and pool at argmax(ids): CLIP's EOT is the largest id.
  return vocab_size - 1 if eos == 2 else eos


def _field(cfg: dict, key: str, kind: type, default: Any, source: str) -> Any:
  """cfg[key] (default if absent) if it has type `kind` (an int is a float; a bool is not a number)."""
  value = cfg.get(key, default)
  kinds = (int, float) if kind is float else kind
  if not isinstance(value, kinds) or (kind in (int, float) and isinstance(value, bool)):
    raise ckpt.CheckpointError(f'{source}: {key}={value!r} should be {kind.__name__}')
  return value


def _rgb(pcfg: dict, key: str, default: tuple[float, ...], source: str) -> tuple[float, ...]:
  """image_mean / image_std: 3 finite numbers (the range is checked with the whole config)."""
  value = _field(pcfg, key, list, list(default), source)
  if len(value) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                for v in value):
    raise ckpt.CheckpointError(f'{source}: {key}={value!r} should be 3 finite numbers (R, G, B)')
  return tuple(float(v) for v in value)


def read(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """An HF `CLIPModel.save_pretrained` directory -> (config, canonical tensors); a CheckpointError
  naming the file for unreadable JSON, wrong types or values that would compute something wrong."""
  cfg_path = os.path.join(path, 'config.json')
  cfg_json = ckpt.read_json(cfg_path)
  st = os.path.join(path, 'model.safetensors')
  if paths.resolve(st).exists():
    sd = ckpt.read_safetensors(st)
  elif paths.resolve(os.path.join(path, 'pytorch_model.bin')).exists():
    sd = torch_pickle.load_state_dict(os.path.join(path, 'pytorch_model.bin'))
  else:
    raise ckpt.CheckpointError(f'{path}: HF directory without model.safetensors or pytorch_model.bin')
  canon = hf_to_canonical(sd)
  vcfg = _field(cfg_json, 'vision_config', dict, {}, cfg_path)
  tcfg = _field(cfg_json, 'text_config', dict, {}, cfg_path)
  act = _field(vcfg, 'hidden_act', str, 'quick_gelu', cfg_path)
  if _field(tcfg, 'hidden_act', str, act, cfg_path) != act:
    raise ckpt.CheckpointError(f'{path}: towers use different activations ({act}, {tcfg["hidden_act"]})')
  if act not in ('quick_gelu', 'gelu'):
    raise ckpt.CheckpointError(f'{path}: unsupported hidden_act {act!r} (quick_gelu or gelu)')
  mean, std = clip.CLIP_MEAN, clip.CLIP_STD
  pre = os.path.join(path, 'preprocessor_config.json')
  if paths.resolve(pre).exists():
    pcfg = ckpt.read_json(pre)
    mean, std = _rgb(pcfg, 'image_mean', mean, pre), _rgb(pcfg, 'image_std', std, pre)
  emb = canon.get('token_embedding.weight')
  vocab = emb.shape[0] if emb is not None and np.ndim(emb) == 2 else 49408
  cfg = ckpt.config_from_canonical(
      canon, heads_vision=_field(vcfg, 'num_attention_heads', int, 12, cfg_path),
      heads_text=_field(tcfg, 'num_attention_heads', int, 8, cfg_path), video_mode='frame_average',
      activation=act, ln_eps=_field(vcfg, 'layer_norm_eps', float, 1e-5, cfg_path),
      eot_id=_hf_eot_id(tcfg, vocab, cfg_path), mean=mean, std=std, source=path)
  return cfg, canon
