"""Resizing positional embeddings when frames or resolution differ from the checkpoint.

Both resamplers reproduce torch's `F.interpolate(..., align_corners=False)` exactly (linear, and
bicubic with A = -0.75), because that is what ViCLIP's and CLIP's own loaders use; jax.image.resize
uses a different cubic kernel and antialiasing.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from absl import logging

from msta_jax.models import clip


def _source_coords(n_in: int, n_out: int) -> np.ndarray:
  return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5


def linear_1d(x: np.ndarray, n_out: int) -> np.ndarray:
  """torch linear interpolation along axis 0 (align_corners=False). [N, ...] -> [n_out, ...]."""
  n_in = x.shape[0]
  src = np.maximum(_source_coords(n_in, n_out), 0.0)
  lo = np.minimum(np.floor(src).astype(int), n_in - 1)
  hi = np.minimum(lo + 1, n_in - 1)
  w = (src - lo).reshape((-1,) + (1,) * (x.ndim - 1))
  return ((1 - w) * x[lo] + w * x[hi]).astype(x.dtype)


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
  """Keys cubic convolution weights for offsets t in [0, 1): taps at -1, 0, 1, 2. [N, 4]."""
  def near(d):  # |d| <= 1
    return ((a + 2) * d - (a + 3)) * d * d + 1

  def far(d):  # 1 < |d| < 2
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
  return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_axis(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
  """torch bicubic along one axis (separable; borders clamp as torch does)."""
  x = np.moveaxis(x, axis, 0).astype(np.float64)
  n_in = x.shape[0]
  src = _source_coords(n_in, n_out)
  base = np.floor(src).astype(int)
  w = _cubic_weights(src - base)
  out = np.zeros((n_out,) + x.shape[1:], np.float64)
  for k in range(4):
    idx = np.clip(base - 1 + k, 0, n_in - 1)
    out += w[:, k].reshape((-1,) + (1,) * (x.ndim - 1)) * x[idx]
  return np.moveaxis(out, 0, axis)


def resize_spatial(pos: np.ndarray, grid_out: int) -> np.ndarray:
  """[1 + g*g, D] -> [1 + grid_out^2, D]: bicubic over the patch grid, CLS row kept."""
  g = int(round((pos.shape[0] - 1) ** 0.5))
  grid = pos[1:].reshape(g, g, -1)
  grid = bicubic_axis(bicubic_axis(grid, grid_out, 0), grid_out, 1)
  return np.concatenate([pos[:1], grid.reshape(grid_out * grid_out, -1).astype(pos.dtype)], 0)


def resize_temporal(tpe: np.ndarray, frames: int) -> np.ndarray:
  """[T, D] -> [frames, D]: linear interpolation when longer, the first frames when shorter."""
  if frames > tpe.shape[0]:
    return linear_1d(tpe, frames)
  return tpe[:frames]


def resize_params(cfg: clip.ModelConfig, params: dict, *, num_frames: int | None,
                  image_size: int | None, source: str) -> tuple[clip.ModelConfig, dict]:
  """Returns (config, params) for the requested frames / resolution; logs what it changed."""
  v = cfg.vision
  visual = dict(params['visual'])
  if num_frames is not None and num_frames != v.num_frames:
    if num_frames < 1:
      raise ValueError(f'num_frames must be positive, got {num_frames}')
    if 'temporal_positional_embedding' in visual:
      how = 'linear interpolation' if num_frames > v.num_frames else f'the first {num_frames} frames'
      visual['temporal_positional_embedding'] = resize_temporal(
          np.asarray(visual['temporal_positional_embedding']), num_frames)
      logging.info('%s: temporal embedding %d -> %d frames (%s)', source, v.num_frames, num_frames, how)
    v = dataclasses.replace(v, num_frames=num_frames)
  if image_size is not None and image_size != v.image_size:
    if image_size % v.patch_size:
      raise ValueError(f'image_size {image_size} is not a multiple of the patch size {v.patch_size}')
    grid = image_size // v.patch_size
    visual['positional_embedding'] = resize_spatial(np.asarray(visual['positional_embedding']), grid)
    logging.info('%s: spatial position grid %d -> %d (bicubic, CLS kept)', source,
                 v.image_size // v.patch_size, grid)
    v = dataclasses.replace(v, image_size=image_size)
  return cfg.replace(vision=v), {**params, 'visual': visual}
