"""Other parameter-efficient methods the paper compares with: LoRA and AdaptFormer.

- LoRA (Hu et al. 2021) on the attention's packed q/k/v projection of chosen blocks:
  qkv = x W_in + (alpha / r) * x A_t B_t for each target t in (q, k, v), A [D, r] Kaiming-uniform,
  B [r, D] zeros, so training starts from the backbone exactly. Parameters `attn/lora_{t}_a|b`.
- AdaptFormer (Chen et al. 2022): a bottleneck MLP parallel to the block's MLP, fed with the MLP's
  input: MLP(LN(x')) + s * up(ReLU(down(LN(x')))), up zero-initialised, s = 0.1 as in its paper.
  Parameters `adaptmlp/down|up`.
Both are chosen per block (1-based, inclusive ranges) and freeze through config.freeze like MSTA.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from msta_jax.models.adapters import dense, torch_linear_init
from msta_jax.models.config_base import AdapterConfig


@dataclasses.dataclass(frozen=True)
class LoRAConfig(AdapterConfig):
  rank: int = 8
  alpha: float = 16.0
  first_block: int = 1
  last_block: int = 12
  targets: tuple[str, ...] = ('q', 'v')

  def validate(self) -> None:
    if self.rank < 1 or not set(self.targets) <= {'q', 'k', 'v'} or not self.targets:
      raise ValueError(f"lora: rank must be >= 1 and targets a subset of ('q', 'k', 'v'), got {self}")


@dataclasses.dataclass(frozen=True)
class AdaptFormerConfig(AdapterConfig):
  bottleneck: int = 64
  scale: float = 0.1
  first_block: int = 1
  last_block: int = 12


class LoRA(nn.Module):
  """The low-rank update of a packed [D, 3D] q/k/v projection: returns [B, L, 3D]."""
  cfg: LoRAConfig
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    parts = []
    for t in ('q', 'k', 'v'):
      if t not in self.cfg.targets:
        parts.append(jnp.zeros(x.shape[:-1] + (d,), x.dtype))
        continue
      a = nn.Dense(self.cfg.rank, use_bias=False, kernel_init=torch_linear_init, dtype=self.dtype,
                   name=f'lora_{t}_a')
      b = nn.Dense(d, use_bias=False, kernel_init=nn.initializers.zeros, dtype=self.dtype, name=f'lora_{t}_b')
      parts.append(b(a(x)) * (self.cfg.alpha / self.cfg.rank))
    return jnp.concatenate(parts, axis=-1)


class AdaptMLP(nn.Module):
  """AdaptFormer's parallel bottleneck: s * up(ReLU(down(h))), h the block's LN'd MLP input."""
  cfg: AdaptFormerConfig
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    d = h.shape[-1]
    z = nn.relu(dense(self.cfg.bottleneck, d, name='down', dtype=self.dtype)(h))
    return self.cfg.scale * dense(d, self.cfg.bottleneck, name='up', zero=True, dtype=self.dtype)(z)
