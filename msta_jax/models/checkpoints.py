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
import math
import os
import re
from typing import Any, Callable

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load, load_file, save

from msta_jax import files
from msta_jax import paths
from msta_jax.models import clip
from msta_jax.models.errors import CheckpointError, brief

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
    if not is_float(sd[key]):
      mis_shaped.append(f'{key}: dtype {np.asarray(sd[key]).dtype}, not floating point')
      continue
    want = tuple(shape_struct.shape)
    try:
      arr = np.asarray(fn(np.asarray(sd[key], dtype=np.float32)))
    except (ValueError, IndexError) as e:  # e.g. a 2-d tensor where a conv kernel's 4 axes are moved.
      mis_shaped.append(f'{key}: checkpoint {tuple(np.shape(sd[key]))} cannot be laid out as {want} ({e})')
      continue
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
  """Every tensor of a safetensors file (safetensors checks each tensor's byte range against the file
  before reading, so memory follows the file's size)."""
  try:  # A URL (gs://...) is read into memory: safetensors memory-maps only local files.
    return load(paths.resolve(path).read_bytes()) if paths.is_url(path) else load_file(path)
  except Exception as e:  # safetensors raises its own error types for bad headers.
    raise CheckpointError(f'{path}: not a readable safetensors file ({brief(e)})') from e


def read_safetensors_metadata(path: str) -> dict[str, str]:
  try:
    with safe_open(path, framework='numpy') as f:
      return f.metadata() or {}
  except Exception as e:  # SafetensorError, OSError: the header itself is broken.
    raise CheckpointError(f'{path}: not a readable safetensors file ({brief(e)})') from e


def read_json(path: str) -> dict[str, Any]:
  """A JSON object from an outside file (a config.json), or a CheckpointError naming the file."""
  try:
    obj = json.loads(paths.resolve(path).read_bytes())
  except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors.
    raise CheckpointError(f'{path}: not a readable JSON file ({brief(e)})') from e
  if not isinstance(obj, dict):
    raise CheckpointError(f'{path}: expected a JSON object, found {type(obj).__name__}')
  return obj


def is_float(x: Any) -> bool:
  """Floating point (bfloat16 included): weights stored as integers would be cast silently."""
  dtype = np.asarray(x).dtype
  return dtype.kind == 'f' or dtype == ml_dtypes.bfloat16


def check_float32(flat: dict[str, np.ndarray], source: str) -> None:
  """Our own files (model.safetensors, adapters.safetensors) hold float32 only: any other dtype is a
  file someone else wrote, or bytes whose label lies."""
  bad = [f'{k}: {np.asarray(v).dtype}' for k, v in sorted(flat.items()) if np.asarray(v).dtype != np.float32]
  if bad:
    raise CheckpointError(f'{source}: tensors that are not float32 (this format writes float32 only): '
                          + ', '.join(bad[:20]))


# --------------------------------------------------------------------------------------------------
# Dimensions from tensor shapes (every foreign format).
# --------------------------------------------------------------------------------------------------

def config_from_canonical(sd: dict[str, np.ndarray], *, heads_vision: int | None, heads_text: int | None,
                          video_mode: str, activation: str = 'quick_gelu', ln_eps: float = 1e-5,
                          eot_id: int | None = None, mean=clip.CLIP_MEAN, std=clip.CLIP_STD,
                          source: str = 'checkpoint') -> clip.ModelConfig:
  """Every dimension from tensor shapes; heads default to width / 64 as OpenAI CLIP and ViCLIP use."""
  def need(key, ndim=2):
    if key not in sd:
      raise CheckpointError(f'{source}: key {key!r} not found; is this a CLIP-layout checkpoint?')
    if np.ndim(sd[key]) != ndim or 0 in np.shape(sd[key]):
      raise CheckpointError(f'{source}: {key} has shape {np.shape(sd[key])}; expected {ndim} non-empty dims')
    return sd[key]

  def depth(prefix):
    ids = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r'(\d+)\.', k))}
    if ids != set(range(len(ids))) or not ids:
      raise CheckpointError(f'{source}: blocks under {prefix!r} are not numbered 0..n-1 ({sorted(ids)})')
    return len(ids)

  conv = need('visual.conv1.weight', 4)
  v_width, patch = conv.shape[0], conv.shape[-1]
  grid = int(round((need('visual.positional_embedding').shape[0] - 1) ** 0.5))
  t_width = need('token_embedding.weight').shape[1]
  tpe = sd.get('visual.temporal_positional_embedding')
  if tpe is not None and np.ndim(tpe) < 2:
    raise CheckpointError(f'{source}: visual.temporal_positional_embedding has shape {np.shape(tpe)}')
  vocab = need('token_embedding.weight').shape[0]
  cfg = clip.ModelConfig(
      vision=clip.VisionConfig(
          width=v_width, layers=depth('visual.transformer.resblocks.'),
          heads=v_width // 64 if heads_vision is None else heads_vision,
          mlp_dim=need('visual.transformer.resblocks.0.mlp.c_fc.weight').shape[0],
          patch_size=patch, image_size=grid * patch,
          num_frames=int(tpe.shape[-2]) if tpe is not None else 8),
      text=clip.TextConfig(
          width=t_width, layers=depth('transformer.resblocks.'),
          heads=t_width // 64 if heads_text is None else heads_text,
          mlp_dim=need('transformer.resblocks.0.mlp.c_fc.weight').shape[0], vocab_size=vocab,
          context_length=need('positional_embedding').shape[0],
          eot_id=vocab - 1 if eot_id is None else eot_id),
      embed_dim=need('visual.proj').shape[1], video_mode=video_mode, activation=activation,
      ln_eps=ln_eps, mean=tuple(mean), std=tuple(std))
  check_config(cfg, source)
  return cfg


def check_config(cfg: clip.ModelConfig, source: str) -> None:
  """Raises a CheckpointError naming `source` for values that would run but compute something wrong:
  heads that do not divide the width, a pooling id outside the vocabulary, a non-positive eps, a
  normalisation that is not 3 channels with positive std."""
  bad = []
  for tower, c in (('vision', cfg.vision), ('text', cfg.text)):
    if not (isinstance(c.heads, int) and c.heads > 0 and c.width % c.heads == 0):
      bad.append(f'{tower} heads {c.heads!r} must be > 0 and divide the width {c.width}')
  if not 0 <= cfg.text.eot_id < cfg.text.vocab_size:
    bad.append(f'eot (pooling) token id {cfg.text.eot_id} outside the vocabulary 0..{cfg.text.vocab_size - 1}')
  if not (math.isfinite(cfg.ln_eps) and cfg.ln_eps > 0):
    bad.append(f'layer norm eps {cfg.ln_eps!r} must be finite and > 0')
  if len(cfg.mean) != 3 or len(cfg.std) != 3:
    bad.append(f'image mean {cfg.mean} and std {cfg.std} must have 3 values (RGB)')
  elif not all(math.isfinite(m) for m in cfg.mean) or not all(math.isfinite(v) and v > 0 for v in cfg.std):
    bad.append(f'image mean {cfg.mean} must be finite and std {cfg.std} finite and > 0')
  if bad:
    raise CheckpointError(f'{source}: ' + '; '.join(bad))


# --------------------------------------------------------------------------------------------------
# msta_jax's own format.
# --------------------------------------------------------------------------------------------------

def flat_param_dict(params: dict) -> dict[str, np.ndarray]:
  return {'/'.join(k): np.asarray(v) for k, v in sorted(_flatten(params).items())}


def write_own(path: str, cfg: clip.ModelConfig, params: dict, extra: dict | None = None) -> None:
  """Writes `path/config.json` + `path/model.safetensors` (Flax paths joined by '/'), each atomically;
  `path` may be a URL (gs://bucket/run/backbone: one object per file, msta_jax.files)."""
  meta = {'format': FORMAT_NAME, 'model': cfg.to_dict(), **(extra or {})}
  files.write_atomic(os.path.join(path, 'config.json'), json.dumps(meta, indent=1, sort_keys=True))
  files.write_atomic(os.path.join(path, 'model.safetensors'), save(flat_param_dict(params)))


def read_own(path: str, shapes_fn: Callable[[clip.ModelConfig], dict]) -> tuple[clip.ModelConfig, dict]:
  cfg_path = os.path.join(path, 'config.json')
  meta = read_json(cfg_path)
  if not isinstance(meta.get('model'), dict):
    raise CheckpointError(f'{cfg_path}: no "model" object (the architecture models.save writes)')
  try:
    cfg = clip.ModelConfig.from_dict(meta['model'])
  except (TypeError, ValueError) as e:
    raise CheckpointError(f'{cfg_path}: bad "model" entry ({brief(e)})') from e
  check_config(cfg, cfg_path)
  st = os.path.join(path, 'model.safetensors')
  flat = read_safetensors(st)
  check_float32(flat, st)
  return cfg, fill_flat(flat, shapes_fn(cfg), st)


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
  the tensors and `meta` (no timestamps, no paths), so equal runs give byte-identical files. Written
  atomically: a reader sees the old file or the new one.

  The metadata is ONE key (the format name -> sorted JSON): safetensors writes its metadata map in
  hash order, which differs between processes, so two keys came out in either order.
  """
  tensors = dict(sorted(flat_param_dict(trainable).items()))
  files.write_atomic(path, save(tensors, metadata={ADAPTERS_FORMAT: json.dumps(meta, sort_keys=True)}))


def read_adapters(path: str) -> tuple[dict[str, np.ndarray], dict]:
  """(float32 tensors, metadata object) of an adapters file; CheckpointError naming it otherwise. The
  metadata's sections are checked strictly where they are applied (loading.py)."""
  meta = read_safetensors_metadata(path)
  if ADAPTERS_FORMAT in meta:
    text = meta[ADAPTERS_FORMAT]
  elif meta.get('format') == ADAPTERS_FORMAT and 'meta' in meta:  # Written before the single-key layout.
    text = meta['meta']
  else:
    raise CheckpointError(f'{path}: not a msta_jax adapters file (its safetensors metadata has no '
                          f'{ADAPTERS_FORMAT!r} entry; keys: {sorted(meta)[:20]})')
  try:
    parsed = json.loads(text)
  except (ValueError, RecursionError) as e:
    raise CheckpointError(f'{path}: adapters metadata is not valid JSON ({brief(e)})') from e
  if not isinstance(parsed, dict):
    raise CheckpointError(f'{path}: adapters metadata is a JSON {type(parsed).__name__}, not an object')
  tensors = read_safetensors(path)
  check_float32(tensors, path)
  return tensors, parsed
