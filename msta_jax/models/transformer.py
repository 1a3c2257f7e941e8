"""The pre-LN residual transformer shared by CLIP's and ViCLIP's towers.

Parameter names copy the OpenAI/ViCLIP checkpoint keys (`resblocks_{i}/attn/in_proj`, `ln_1`,
`mlp/c_fc`, ...) so the converter in checkpoints.py is a rename plus transposes. Attention keeps
OpenAI's packed q/k/v projection (one [D, 3D] matmul); models/attention.py picks the attention kernel
per (platform, dtype). Precision follows models/precision.py: matmuls in `dtype`, the residual stream,
LayerNorm statistics and every add to the stream in float32.

MSTA hooks in at the `Transformer` level, outside the blocks: its adapted block j computes
`Block_j(x) + lambda * A_j(x)` from the block's INPUT, so the block stays the plain pretrained maths.
LoRA and AdaptFormer (models/peft.py) do live inside the blocks their configs name: LoRA adds to the
attention's q/k/v projection, AdaptFormer runs parallel to the block's MLP.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp

from msta_jax.models import attention as attention_lib
from msta_jax.models import peft
from msta_jax.models import precision

Dtype = Any


def quick_gelu(x: jax.Array) -> jax.Array:
  """OpenAI CLIP's activation: x * sigmoid(1.702 x)."""
  return x * jax.nn.sigmoid(1.702 * x)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'quick_gelu': quick_gelu,
    'gelu': lambda x: jax.nn.gelu(x, approximate=False),
    'gelu_tanh': lambda x: jax.nn.gelu(x, approximate=True),
}


class LayerNorm(nn.Module):
  """LayerNorm computed in float32, output in `dtype`: float32 where it feeds the residual stream or a
  head (ln_pre, ln_post, ln_final), the compute dtype where it feeds a matmul (ln_1, ln_2)."""
  eps: float = 1e-5
  dtype: Dtype = precision.RESIDUAL

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (d,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (d,), jnp.float32)
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.square(x32 - mean).mean(-1, keepdims=True)  # Two-pass variance, as torch computes it.
    return ((x32 - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias).astype(self.dtype)


class MultiheadAttention(nn.Module):
  """torch.nn.MultiheadAttention with packed in_proj, as OpenAI CLIP and ViCLIP store it."""
  heads: int
  causal: bool = False
  dtype: Dtype = jnp.float32
  lora: Any = None  # peft.LoRAConfig: a low-rank update of in_proj (models/peft.py).
  first_query_only: bool = False  # Output token 0 alone, [B, 1, D] (keys and values from all tokens).

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, l, d = x.shape
    if d % self.heads:
      raise ValueError(f'width {d} is not divisible by {self.heads} heads')
    if self.first_query_only and self.causal:
      raise ValueError('first_query_only is for bidirectional attention (token 0 sees every token)')
    qkv = nn.Dense(3 * d, dtype=self.dtype, name='in_proj')(x)
    if self.lora is not None:
      qkv = qkv + peft.LoRA(self.lora, self.dtype, name='lora')(x)
    q, k, v = jnp.split(qkv.reshape(b, l, 3, self.heads, d // self.heads), 3, axis=2)
    q = q[:, :1] if self.first_query_only else q
    out = attention_lib.attention(q[:, :, 0], k[:, :, 0], v[:, :, 0], causal=self.causal)
    return nn.Dense(d, dtype=self.dtype, name='out_proj')(out.reshape(b, q.shape[1], d))


class Mlp(nn.Module):
  hidden: int
  activation: str = 'quick_gelu'
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = ACTIVATIONS[self.activation](nn.Dense(self.hidden, dtype=self.dtype, name='c_fc')(x))
    return nn.Dense(x.shape[-1], dtype=self.dtype, name='c_proj')(h)


class DropPath(nn.Module):
  """Stochastic depth on a residual branch (ViCLIP pre-training used up to 0.1); identity at eval."""
  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0).astype(x.dtype)


class ResidualAttentionBlock(nn.Module):
  """x + attn(ln_1(x)), then + mlp(ln_2(x)). [B, L, D] -> [B, L, D] ([B, 1, D]: first_token_only).
  x and the output are the float32 residual stream; the branches compute in `dtype`."""
  heads: int
  mlp_dim: int
  activation: str = 'quick_gelu'
  causal: bool = False
  drop_path: float = 0.0
  ln_eps: float = 1e-5
  dtype: Dtype = jnp.float32
  lora: Any = None         # peft.LoRAConfig for this block, or None.
  adaptformer: Any = None  # peft.AdaptFormerConfig for this block, or None.
  first_token_only: bool = False  # Compute token 0's output alone (the last block under a CLS head).

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    dp = DropPath(self.drop_path)
    h = MultiheadAttention(self.heads, self.causal, self.dtype, self.lora, self.first_token_only, name='attn')(
        LayerNorm(self.ln_eps, self.dtype, name='ln_1')(x))
    x = (x[:, :1] if self.first_token_only else x) + dp(precision.to_stream(h), train=train)
    normed = LayerNorm(self.ln_eps, self.dtype, name='ln_2')(x)
    h = precision.to_stream(Mlp(self.mlp_dim, self.activation, self.dtype, name='mlp')(normed))
    if self.adaptformer is not None:
      h = h + precision.to_stream(peft.AdaptMLP(self.adaptformer, self.dtype, name='adaptmlp')(normed))
    return x + dp(h, train=train)


class AdapterFactory(Protocol):
  """Builds the adapter of block `index` (0-based) or returns None for an unadapted block.

  The adapter is called as `adapter(x, *, train)` on the block's input and returns the already
  scaled residual to add to the block's output, in float32 (models/precision.py).
  """

  def __call__(self, index: int) -> nn.Module | None:
    ...


class Transformer(nn.Module):
  """A stack of `layers` residual blocks named `resblocks_{i}`, with optional parallel adapters."""
  layers: int
  heads: int
  mlp_dim: int
  activation: str = 'quick_gelu'
  causal: bool = False
  drop_path: float = 0.0  # Max stochastic depth; rates rise linearly over depth as in ViCLIP.
  ln_eps: float = 1e-5
  remat: bool = False  # Rematerialise each block in the backward pass (memory for compute).
  dtype: Dtype = jnp.float32
  lora: Any = None         # peft.LoRAConfig (its block range applies), or None.
  adaptformer: Any = None  # peft.AdaptFormerConfig (its block range applies), or None.

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False, adapters: AdapterFactory | None = None,
               first_token_only: bool = False) -> jax.Array:
    """[B, L, D] -> [B, L, D]. `first_token_only`: the caller reads token 0 alone (a CLS head), so
    the last block computes only its output ([B, 1, D]); its keys and values still come from every
    token. Same values; saves the last block's MLP and out_proj on L - 1 tokens (ViT-B/16: ~6% of
    a forward)."""
    block_cls = nn.remat(ResidualAttentionBlock, static_argnums=(2,)) if self.remat else ResidualAttentionBlock
    rates = [self.drop_path * i / max(self.layers - 1, 1) for i in range(self.layers)]
    x = precision.to_stream(x)
    for i in range(self.layers):
      # LoRA / AdaptFormer only inside the blocks their configs name.
      lora = self.lora if self.lora is not None and i in self.lora.blocks(self.layers) else None
      adaptformer = (self.adaptformer if self.adaptformer is not None
                     and i in self.adaptformer.blocks(self.layers) else None)
      block = block_cls(self.heads, self.mlp_dim, self.activation, self.causal, rates[i], self.ln_eps,
                        self.dtype, lora, adaptformer, first_token_only and i == self.layers - 1,
                        name=f'resblocks_{i}')
      adapter = adapters(i) if adapters is not None else None
      y = block(x, train)
      x = y if adapter is None else y + adapter(x, train=train)[:, :y.shape[1]]
    return x
