"""HF transformers CLIP directories (`CLIPModel.save_pretrained`: config.json + model.safetensors or
pytorch_model.bin), renamed to the canonical keys of checkpoints.py.

HF splits OpenAI's packed q/k/v projection into q_proj, k_proj and v_proj: they are concatenated back;
an incomplete triple stays under its HF names so the strict fill reports it.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np

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


def _hf_eot_id(text_cfg: dict, vocab_size: int) -> int:
  eos = text_cfg.get('eos_token_id', 49407)
  # HF's legacy configs say eos_token_id=2 and pool at argmax(ids): CLIP's EOT is the largest id.
  return vocab_size - 1 if eos == 2 else int(eos)


def read(path: str) -> tuple[clip.ModelConfig, dict[str, np.ndarray]]:
  """An HF `CLIPModel.save_pretrained` directory -> (config, canonical tensors)."""
  cfg_json = json.load(open(os.path.join(path, 'config.json')))
  st = os.path.join(path, 'model.safetensors')
  if os.path.exists(st):
    sd = ckpt.read_safetensors(st)
  elif os.path.exists(os.path.join(path, 'pytorch_model.bin')):
    sd = torch_pickle.load_state_dict(os.path.join(path, 'pytorch_model.bin'))
  else:
    raise ckpt.CheckpointError(f'{path}: HF directory without model.safetensors or pytorch_model.bin')
  canon = hf_to_canonical(sd)
  vcfg, tcfg = cfg_json.get('vision_config', {}), cfg_json.get('text_config', {})
  act = vcfg.get('hidden_act', 'quick_gelu')
  if tcfg.get('hidden_act', act) != act:
    raise ckpt.CheckpointError(f'{path}: towers use different activations ({act}, {tcfg["hidden_act"]})')
  if act not in ('quick_gelu', 'gelu'):
    raise ckpt.CheckpointError(f'{path}: unsupported hidden_act {act!r} (quick_gelu or gelu)')
  mean, std = clip.CLIP_MEAN, clip.CLIP_STD
  pre = os.path.join(path, 'preprocessor_config.json')
  if os.path.exists(pre):
    pcfg = json.load(open(pre))
    mean, std = pcfg.get('image_mean', mean), pcfg.get('image_std', std)
  vocab = canon['token_embedding.weight'].shape[0] if 'token_embedding.weight' in canon else 49408
  cfg = ckpt.config_from_canonical(
      canon, heads_vision=vcfg.get('num_attention_heads', 12), heads_text=tcfg.get('num_attention_heads', 8),
      video_mode='frame_average', activation=act, ln_eps=vcfg.get('layer_norm_eps', 1e-5),
      eot_id=_hf_eot_id(tcfg, vocab), mean=mean, std=std, source=path)
  return cfg, canon
