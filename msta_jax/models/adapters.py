"""MSTA: the Multi-modal Spatio-Temporal Adapter. The only place that holds the adapter maths.

Per adapted block j (both towers), in parallel to the frozen block:

    x_j = Block_j(x) + lambda * A_j(x)
    h   = ReLU(W_shared_j(ReLU(W_down^m_j(LN(x)))))        m = video or text
    text:  A = W_up^t(h)
    video: A = u + DWConv_t(u),  u = W_up^s(h)              (conv_input='up', default)
           A = u + DWConv_t(LN(x))                          (conv_input='input', the other reading)

- LN has no parameters of its own: the logged trainable counts (1,744,000 for d=128 in blocks 8..12 of
  ViCLIP-B/16; 8,712,192 for d=256 in blocks 1..12) only fit an adapter without LayerNorm weights.
- W_shared_j is ONE Dense layer (`msta/shared_{j}`) called by the video and the text branch of layer j,
  so it receives gradient from both. Without sharing (ablation) each branch owns `middle`.
- DWConv_t: depthwise convolution over frames (one `temporal_kernel` filter and a bias per channel),
  applied per patch position. ViCLIP's joint tokens are patch-major ([CLS, (n=0,t=0), (n=0,t=1), ...]),
  so patches are viewed as [B, P, T, D]; the frame-wise CLIP path sees [B*T, 1+P, D] and views it as
  [B, T, 1+P, D].
- CLS tokens (ours to choose): 'patch_mean' (default) adds to the CLS token the mean of the conv output
  over the patch tokens of its frame (frame-wise CLIP) or of the whole clip (ViCLIP's single CLS);
  'conv' convolves the frame-wise CLS tokens over time like a patch position (frame-wise only);
  'none' leaves CLS to A = u. The synthetic prototype trained reliably only with 'patch_mean'.
- Initialisation (ours to choose): W_down, W_shared as torch's nn.Linear default (Kaiming-uniform with
  a = sqrt(5)); W_up zeros by default (the adapted model starts as the backbone, exactly) or the same
  Kaiming-uniform; the conv starts as identity plus a centred temporal difference (kernel
  [-0.5, 1, 0.5]), which trained reliably where identity alone or zeros did not (synthetic_demo.md).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from msta_jax.models import precision
from msta_jax.models.config_base import AdapterConfig


@dataclasses.dataclass(frozen=True)
class MSTAConfig(AdapterConfig):
  first_block: int = 8     # 1-based, inclusive.
  last_block: int = 12     # 1-based, inclusive.
  bottleneck: int = 128    # d; the paper's headline uses 256.
  scale: float = 0.005     # lambda; 0.05 collapses novel-class accuracy in the authors' logs.
  temporal_kernel: int = 3
  temporal_conv: bool = True      # False: the msta_no_temporal_conv control (A = u for video).
  conv_input: str = 'up'          # 'up': conv on u; 'input': conv on LN(x).
  cls_mode: str = 'patch_mean'    # 'patch_mean' | 'conv' | 'none'.
  conv_init: str = 'diff'         # 'diff' [-0.5, 1, 0.5] | 'identity' | 'zeros'.
  up_init: str = 'zeros'          # 'zeros' | 'kaiming'.
  video: bool = True              # False: language-only ablation.
  text: bool = True               # False: vision-only ablation.
  shared: bool = True             # False: each modality gets its own middle layer.

  def validate(self) -> None:
    choices = {'conv_input': ('up', 'input'), 'cls_mode': ('patch_mean', 'conv', 'none'),
               'conv_init': ('diff', 'identity', 'zeros'), 'up_init': ('zeros', 'kaiming')}
    for field, allowed in choices.items():
      if getattr(self, field) not in allowed:
        raise ValueError(f'msta.{field}={getattr(self, field)!r}; allowed: {allowed}')
    if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
      raise ValueError(f'msta.temporal_kernel must be odd and positive, got {self.temporal_kernel}')
    if not (self.video or self.text):
      raise ValueError('msta.video and msta.text are both False: nothing to adapt')


def torch_linear_init(key, shape, dtype=jnp.float32):
  """torch nn.Linear's default weight init (Kaiming-uniform, a=sqrt(5)): U(-1/sqrt(fan_in), ...)."""
  bound = 1.0 / np.sqrt(shape[0])
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def _bias_init(fan_in: int) -> Callable:
  bound = 1.0 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def dense(features: int, fan_in: int, name: str | None = None, zero: bool = False,
          dtype=jnp.float32) -> nn.Dense:
  if zero:
    return nn.Dense(features, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros,
                    dtype=dtype, name=name)
  return nn.Dense(features, kernel_init=torch_linear_init, bias_init=_bias_init(fan_in), dtype=dtype, name=name)


def plain_layer_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """LayerNorm without scale or bias, computed in float32."""
  x32 = x.astype(jnp.float32)
  mean = x32.mean(-1, keepdims=True)
  var = jnp.square(x32 - mean).mean(-1, keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def _conv_kernel_init(kind: str, k: int) -> Callable:
  def init(key, shape, dtype=jnp.float32):  # Flax depthwise kernel: [k, 1, D].
    del key
    taps = np.zeros(k, np.float32)
    if kind in ('diff', 'identity'):
      taps[k // 2] = 1.0
    if kind == 'diff' and k >= 3:
      taps[k // 2 - 1], taps[k // 2 + 1] = -0.5, 0.5
    return jnp.broadcast_to(jnp.asarray(taps, dtype)[:, None, None], shape)
  return init


class DepthwiseTemporalConv(nn.Module):
  """Depthwise 1-D convolution over axis -2 ('SAME' zero padding), as a sum of k shifted, scaled copies.

  The same maths and parameters as `nn.Conv(d, (k,), padding='SAME', feature_group_count=d)` (kernel
  [k, 1, D], bias [D], cross-correlation), written out because XLA:CPU lowers a depthwise convolution and
  its kernel gradient to slow generic loops: with the conv, a tiny-model MSTA step took 3x the time of
  the same step without it. Over 3..7 taps of 8..16 frames the shifted sum is a handful of fused
  element-wise ops on every backend.
  """
  features: int
  kernel_size: int
  kernel_init: Callable
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:  # [N, T, D] -> [N, T, D]
    k, t = self.kernel_size, x.shape[-2]
    kernel = self.param('kernel', self.kernel_init, (k, 1, self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    x = x.astype(self.dtype)
    pad = [(0, 0)] * (x.ndim - 2) + [(k // 2, k // 2), (0, 0)]
    padded = jnp.pad(x, pad)
    out = sum(padded[..., j:j + t, :] * kernel[j, 0].astype(self.dtype) for j in range(k))
    return out + bias.astype(self.dtype)


class TemporalMix(nn.Module):
  """Depthwise conv over frames at every patch position, with the CLS rule of MSTAConfig.cls_mode."""
  cfg: MSTAConfig
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, src: jax.Array, *, frames: int, joint: bool) -> jax.Array:
    d, k = src.shape[-1], self.cfg.temporal_kernel
    conv = DepthwiseTemporalConv(d, k, _conv_kernel_init(self.cfg.conv_init, k), self.dtype, name='conv')
    if joint:  # [B, 1 + P*T, D], patch-major.
      b = src.shape[0]
      p = (src.shape[1] - 1) // frames
      patches = conv(src[:, 1:].reshape(b * p, frames, d))
      cls = jnp.zeros_like(src[:, :1])
      if self.cfg.cls_mode == 'patch_mean':
        cls = patches.reshape(b, p * frames, d).mean(1, keepdims=True)
      elif self.cfg.cls_mode == 'conv':
        raise ValueError("msta.cls_mode='conv' needs per-frame CLS tokens (frame-wise CLIP), not ViCLIP")
      return jnp.concatenate([cls, patches.reshape(b, p * frames, d)], axis=1)
    # Frame-wise: [B*T, 1 + P, D] -> [B, T, 1 + P, D].
    bt, n = src.shape[:2]
    b = bt // frames
    x = src.reshape(b, frames, n, d)
    mixed_patches = conv(x[:, :, 1:].transpose(0, 2, 1, 3).reshape(b * (n - 1), frames, d))
    mixed_patches = mixed_patches.reshape(b, n - 1, frames, d).transpose(0, 2, 1, 3)
    if self.cfg.cls_mode == 'patch_mean':
      cls = mixed_patches.mean(2, keepdims=True)
    elif self.cfg.cls_mode == 'conv':
      cls = conv(x[:, :, :1].transpose(0, 2, 1, 3).reshape(b, frames, d)).reshape(b, frames, 1, d)
    else:
      cls = jnp.zeros_like(x[:, :, :1])
    return jnp.concatenate([cls, mixed_patches], axis=2).reshape(bt, n, d)


class Branch(nn.Module):
  """One modality's adapter at one block; returns lambda * A(x), the residual to add, in float32.
  Its matmuls and the temporal conv run in `dtype` (models/precision.py)."""
  cfg: MSTAConfig
  width: int
  middle: nn.Module | None  # The shared W_shared_j, or None to own a middle layer.
  temporal: bool            # Video branch with the temporal conv.
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False, frames: int = 1, joint: bool = False) -> jax.Array:
    del train  # No dropout inside the adapter.
    d = self.cfg.bottleneck
    normed = plain_layer_norm(x)
    h = nn.relu(dense(d, self.width, 'down', dtype=self.dtype)(normed))
    middle = self.middle if self.middle is not None else dense(d, d, 'middle', dtype=self.dtype)
    h = nn.relu(middle(h))
    a = dense(self.width, d, 'up', zero=self.cfg.up_init == 'zeros', dtype=self.dtype)(h)
    if self.temporal:
      src = a if self.cfg.conv_input == 'up' else normed
      mixed = TemporalMix(self.cfg, self.dtype, name='temporal')(src, frames=frames, joint=joint)
      a = precision.to_stream(a) + precision.to_stream(mixed)
    # Scaled and returned in float32: lambda * A is small against the stream it joins (precision.py).
    return self.cfg.scale * precision.to_stream(a)


class MSTA(nn.Module):
  """All adapters of a two-tower model: `video_{j}`, `text_{j}`, `shared_{j}` (j 0-based)."""
  cfg: MSTAConfig
  video_width: int
  text_width: int
  video_layers: int
  text_layers: int
  dtype: Any = jnp.float32

  def setup(self):
    cfg = self.cfg
    v_blocks = cfg.blocks(self.video_layers) if cfg.video else []
    t_blocks = cfg.blocks(self.text_layers) if cfg.text else []
    # One modality alone keeps W_shared_j as its middle layer; only the no-shared ablation drops it.
    use_shared = cfg.shared or not (cfg.video and cfg.text)
    d = cfg.bottleneck
    # Assigned first so the branches below refer to (not adopt) these layers: names `shared_{j}`.
    self.shared = {j: dense(d, d, dtype=self.dtype) for j in sorted(set(v_blocks) | set(t_blocks))} \
        if use_shared else {}
    self.video = {j: Branch(cfg, self.video_width, self.shared.get(j), cfg.temporal_conv, self.dtype)
                  for j in v_blocks}
    self.text = {j: Branch(cfg, self.text_width, self.shared.get(j), False, self.dtype) for j in t_blocks}

  def video_factory(self, frames: int, joint: bool) -> Callable[[int], Callable | None]:
    def factory(i: int):
      return functools.partial(self.video[i], frames=frames, joint=joint) if i in self.video else None
    return factory

  def text_factory(self) -> Callable[[int], Callable | None]:
    return lambda i: self.text.get(i)

  def __call__(self):  # Parameters are created through the factories; nothing to do standalone.
    return None
