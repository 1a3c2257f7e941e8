"""Pixels on the wire -> model input, on the device: the ONE normalisation of training, evaluation and
prediction.

Clips leave the host as uint8 (4x fewer bytes than float32) and are normalised with the model's
mean/std inside the jitted step or scoring function. A uint8 pixel v of channel c becomes
`table[v, c]`, a [256, 3] float32 table computed on the host with numpy in exactly the arithmetic the
host pipeline used before (so values are bit-identical to it on every platform: the device does a
lookup, no float arithmetic that a compiler could fuse into an FMA):

- 'train': (v * float32(1/255) - mean) * (1/std)    (transforms.train_clip's order of operations)
- 'test':  (v / 255 - mean) / std                    (transforms.test_views')

Training clips whose colour was jittered or greyed on the host (those ops produce values no uint8 can
hold) arrive as float32 in 0..1 and take `(x - mean) * (1/std)`: a subtraction then a multiplication,
the same two correctly rounded operations as before, which no compiler can contract into an FMA.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np


def _train_rule(v: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  x = v * np.float32(1 / 255)
  x = x - mean
  x *= 1 / std
  return x


def _test_rule(v: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  return (v / 255.0 - mean) / std


RULES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    'train': _train_rule, 'test': _test_rule}


def table(mean: Sequence[float], std: Sequence[float], rule: str) -> np.ndarray:
  """[256, 3] float32: the model input of uint8 value v in channel c under `rule`."""
  if rule not in RULES:
    raise ValueError(f'normalisation rule must be one of {sorted(RULES)}, got {rule!r}')
  values = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1)
  out = RULES[rule](values, np.asarray(mean, np.float32), np.asarray(std, np.float32))
  assert out.dtype == np.float32
  return out


def model_input(video, mean: Sequence[float], std: Sequence[float], rule: str) -> jnp.ndarray:
  """uint8 pixels [..., 3] (or float32 in 0..1, training only) -> normalised float32, in jit."""
  if video.dtype == jnp.uint8:
    flat = jnp.asarray(table(mean, std, rule).reshape(-1))
    return jnp.take(flat, video.astype(jnp.int32) * 3 + jnp.arange(3, dtype=jnp.int32), mode='clip')
  if rule != 'train':
    raise ValueError(f'float clips are normalised only by the training rule, got rule {rule!r} for '
                     f'{video.dtype} pixels; evaluation views are uint8')
  return (video - jnp.asarray(mean, jnp.float32)) * jnp.asarray(1 / np.asarray(std, np.float32))
