"""The canonical checkpoint layout every reader ends in, and msta_jax's own formats.

Every foreign format is first renamed to CANONICAL keys (OpenAI CLIP's state-dict names, torch
layouts: `visual.conv1.weight`, `visual.transformer.resblocks.{i}.attn.in_proj_weight`,
`token_embedding.weight`, `text_projection`, `logit_scale`, ...) by its own module, then
`canonical_to_params` fills the Flax tree strictly: every tensor consumed, every parameter filled with
the right shape, or one error listing all missing, unexpected and mis-shaped keys.

One module per foreign format knows its layout: format_hf.py (HF transformers CLIP directories),
format_openai.py (OpenAI CLIP .pt), format_viclip.py (ViCLIP .pth / .safetensors); torch files are
read by torch_pickle.py and loading.py tells the formats apart. Here:
- msta_jax's own directory (config.json with "format": "msta_jax" + model.safetensors, Flax paths);
- adapters.safetensors, the trained weights of a run with its adapter configs as metadata.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from msta_jax.models import clip
from msta_jax.models.errors import CheckpointError

FORMAT_NAME = 'msta_jax'
# Buffers some writers store beside parameters; they carry no learned state.
_IGNORED_BUFFERS = re.compile(r'.*(position_ids|attn_mask)$')


# --------------------------------------------------------------------------------------------------
# Canonical (torch, OpenAI names) <-> Flax parameter paths.
# --------------------------------------------------------------------------------------------------

def transpose(x: np.ndarray) -> np.ndarray:
  """torch [out, in] <-> Flax [in, out], contiguous."""
  return np.ascontiguousarray(x.T)


def canonical_key(path: tuple[str, ...]) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
  """Flax param path -> (canonical key, transform from the torch tensor to the Flax array)."""
  p = list(path)
  if p[0] == 'text':  # OpenAI keeps the text tower at the top level.
    p = p[1:]
  ident = lambda x: x
  leaf = p[-1]
  if len(p) == 1 or p[-1] in ('class_embedding', 'positional_embedding', 'proj', 'text_projection'):
    return '.'.join(p), ident
  if p[-2:] == ['conv1', 'kernel']:
    return 'visual.conv1.weight', lambda x: np.ascontiguousarray(x.transpose(2, 3, 1, 0))
  if p[-1] == 'temporal_positional_embedding':
    return 'visual.temporal_positional_embedding', lambda x: x.reshape(x.shape[-2:])
  if p[-2:] == ['token_embedding', 'embedding']:
    return 'token_embedding.weight', ident
  if len(p) >= 2 and p[-2] == 'in_proj':  # Packed q/k/v keeps torch MultiheadAttention's names.
    prefix = '.'.join(_block_names(p[:-2]))
    return (f'{prefix}.in_proj_weight', transpose) if leaf == 'kernel' else (f'{prefix}.in_proj_bias', ident)
  names = _block_names(p[:-1])
  if leaf == 'kernel':
    return '.'.join(names + ['weight']), transpose
  if leaf == 'scale':
    return '.'.join(names + ['weight']), ident
  return '.'.join(names + [leaf]), ident


def _block_names(p: list[str]) -> list[str]:
  out = []
  for name in p:
    m = re.fullmatch(r'resblocks_(\d+)', name)
    out.extend(['resblocks', m.group(1)] if m else [name])
  return out


def _flatten(tree: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flatten(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict:
  tree: dict = {}
  for path, v in flat.items():
    node = tree
    for k in path[:-1]:
      node = node.setdefault(k, {})
    node[path[-1]] = v
  return tree


def canonical_to_params(sd: dict[str, np.ndarray], shapes: dict, source: str) -> dict:
  """Fills a Flax params tree with the shapes of `shapes` from canonical tensors, strictly."""
  flat_shapes = _flatten(shapes)
  out, missing, mis_shaped, used = {}, [], [], set()
  for path, shape_struct in flat_shapes.items():
    key, fn = canonical_key(path)
    if key not in sd:
      missing.append(key)
      continue
    used.add(key)
    arr = np.asarray(fn(np.asarray(sd[key], dtype=np.float32)))
    want = tuple(shape_struct.shape)
    if arr.shape != want:
      mis_shaped.append(f'{key}: checkpoint {tuple(np.shape(sd[key]))} -> {arr.shape}, model wants {want}')
      continue
    out[path] = arr.astype(shape_struct.dtype)
  unexpected = sorted(k for k in sd if k not in used and not _IGNORED_BUFFERS.fullmatch(k))
  if missing or unexpected or mis_shaped:
    raise CheckpointError(mismatch_message(source, missing, unexpected, mis_shaped))
  return _unflatten(out)


def mismatch_message(source: str, missing, unexpected, mis_shaped) -> str:
  lines = [f'{source} does not match the model:']
  for title, items in (('missing', missing), ('unexpected', unexpected), ('mis-shaped', mis_shaped)):
    if items:
      lines.append(f'  {len(items)} {title}: ' + ', '.join(items[:20]) + (' ...' if len(items) > 20 else ''))
  lines.append('  Check that the file is the architecture you asked for; adapters and other new '
               'parameters are loaded separately (models.load(..., adapters=FILE)).')
  return '\n'.join(lines)


# --------------------------------------------------------------------------------------------------
# Reading tensors.
# --------------------------------------------------------------------------------------------------

def read_safetensors(path: str) -> dict[str, np.ndarray]:
  try:
    return load_file(path)
  except Exception as e:  # safetensors raises its own error types for bad headers.
    raise CheckpointError(f'{path}: not a readable safetensors file ({e})') from e


def read_safetensors_metadata(path: str) -> dict[str, str]:
  with safe_open(path, framework='numpy') as f:
    return f.metadata() or {}


# --------------------------------------------------------------------------------------------------
# Dimensions from tensor shapes (every foreign format).
# --------------------------------------------------------------------------------------------------

def config_from_canonical(sd: dict[str, np.ndarray], *, heads_vision: int | None, heads_text: int | None,
                          video_mode: str, activation: str = 'quick_gelu', ln_eps: float = 1e-5,
                          eot_id: int | None = None, mean=clip.CLIP_MEAN, std=clip.CLIP_STD,
                          source: str = 'checkpoint') -> clip.ModelConfig:
  """Every dimension from tensor shapes; heads default to width / 64 as OpenAI CLIP and ViCLIP use."""
  def need(key):
    if key not in sd:
      raise CheckpointError(f'{source}: key {key!r} not found; is this a CLIP-layout checkpoint?')
    return sd[key]

  def depth(prefix):
    ids = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r'(\d+)\.', k))}
    if ids != set(range(len(ids))) or not ids:
      raise CheckpointError(f'{source}: blocks under {prefix!r} are not numbered 0..n-1 ({sorted(ids)})')
    return len(ids)

  conv = need('visual.conv1.weight')
  v_width, patch = conv.shape[0], conv.shape[-1]
  grid = int(round((need('visual.positional_embedding').shape[0] - 1) ** 0.5))
  t_width = need('token_embedding.weight').shape[1]
  tpe = sd.get('visual.temporal_positional_embedding')
  vocab = need('token_embedding.weight').shape[0]
  return clip.ModelConfig(
      vision=clip.VisionConfig(
          width=v_width, layers=depth('visual.transformer.resblocks.'),
          heads=heads_vision or v_width // 64,
          mlp_dim=need('visual.transformer.resblocks.0.mlp.c_fc.weight').shape[0],
          patch_size=patch, image_size=grid * patch,
          num_frames=int(tpe.shape[-2]) if tpe is not None else 8),
      text=clip.TextConfig(
          width=t_width, layers=depth('transformer.resblocks.'), heads=heads_text or t_width // 64,
          mlp_dim=need('transformer.resblocks.0.mlp.c_fc.weight').shape[0], vocab_size=vocab,
          context_length=need('positional_embedding').shape[0],
          eot_id=vocab - 1 if eot_id is None else eot_id),
      embed_dim=need('visual.proj').shape[1], video_mode=video_mode, activation=activation,
      ln_eps=ln_eps, mean=tuple(mean), std=tuple(std))


# --------------------------------------------------------------------------------------------------
# msta_jax's own format.
# --------------------------------------------------------------------------------------------------

def flat_param_dict(params: dict) -> dict[str, np.ndarray]:
  return {'/'.join(k): np.asarray(v) for k, v in sorted(_flatten(params).items())}


def write_own(path: str, cfg: clip.ModelConfig, params: dict, extra: dict | None = None) -> None:
  """Writes `path/config.json` + `path/model.safetensors` (Flax paths joined by '/')."""
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, 'config.json'), 'w') as f:
    json.dump({'format': FORMAT_NAME, 'model': cfg.to_dict(), **(extra or {})}, f, indent=1, sort_keys=True)
  save_file(flat_param_dict(params), os.path.join(path, 'model.safetensors'))


def read_own(path: str, shapes_fn: Callable[[clip.ModelConfig], dict]) -> tuple[clip.ModelConfig, dict]:
  meta = json.load(open(os.path.join(path, 'config.json')))
  cfg = clip.ModelConfig.from_dict(meta['model'])
  flat = read_safetensors(os.path.join(path, 'model.safetensors'))
  return cfg, fill_flat(flat, shapes_fn(cfg), os.path.join(path, 'model.safetensors'))


def check_flat(flat: dict[str, Any], shapes: dict, source: str) -> dict[str, Any]:
  """Raises unless '/'-joined `flat` has exactly the keys and shapes of `shapes`; returns those."""
  want = {'/'.join(k): v for k, v in _flatten(shapes).items()}
  missing = sorted(set(want) - set(flat))
  unexpected = sorted(set(flat) - set(want))
  mis = [f'{k}: file {tuple(flat[k].shape)}, model {tuple(want[k].shape)}'
         for k in sorted(set(want) & set(flat)) if tuple(flat[k].shape) != tuple(want[k].shape)]
  if missing or unexpected or mis:
    raise CheckpointError(mismatch_message(source, missing, unexpected, mis))
  return want


def fill_flat(flat: dict[str, np.ndarray], shapes: dict, source: str) -> dict:
  """Strictly fills a tree of ShapeDtypeStructs from '/'-joined keys."""
  want = check_flat(flat, shapes, source)
  return _unflatten({tuple(k.split('/')): flat[k].astype(want[k].dtype) for k in want})


def flat_paths(tree: dict) -> dict[str, Any]:
  """'/'-joined leaf paths of a nested dict (no copies)."""
  return {'/'.join(k): v for k, v in _flatten(tree).items()}


# --------------------------------------------------------------------------------------------------
# Trained weights on top of a backbone (adapters, or any trained subset).
# --------------------------------------------------------------------------------------------------

ADAPTERS_FORMAT = 'msta_jax.adapters'


def write_adapters(path: str, trainable: dict, meta: dict) -> None:
  """safetensors of the trained parameters ('/' paths) with JSON metadata; the bytes depend only on
  the tensors and `meta` (no timestamps, no paths), so equal runs give byte-identical files.

  The metadata is ONE key (the format name -> sorted JSON): safetensors writes its metadata map in
  hash order, which differs between processes, so two keys came out in either order.
  """
  tensors = dict(sorted(flat_param_dict(trainable).items()))
  save_file(tensors, path, metadata={ADAPTERS_FORMAT: json.dumps(meta, sort_keys=True)})


def read_adapters(path: str) -> tuple[dict[str, np.ndarray], dict]:
  meta = read_safetensors_metadata(path)
  if ADAPTERS_FORMAT in meta:
    return read_safetensors(path), json.loads(meta[ADAPTERS_FORMAT])
  if meta.get('format') == ADAPTERS_FORMAT:  # Written before the single-key layout.
    return read_safetensors(path), json.loads(meta['meta'])
  raise CheckpointError(f'{path}: not a msta_jax adapters file (its safetensors metadata has no '
                        f'{ADAPTERS_FORMAT!r} entry; keys: {sorted(meta)})')
