"""The pre-LN residual transformer shared by CLIP's and ViCLIP's towers.

Parameter names copy the OpenAI/ViCLIP checkpoint keys (`resblocks_{i}/attn/in_proj`, `ln_1`,
`mlp/c_fc`, ...) so the converter in checkpoints.py is a rename plus transposes. Attention keeps
OpenAI's packed q/k/v projection (one [D, 3D] matmul). `attention` picks the kernel per backend:
cuDNN's fused kernel through `jax.nn.dot_product_attention` on GPUs in bf16/fp16, the XLA path of the
same function elsewhere, and `heads_major_attention` on CPU, where it is 2.4x faster.

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

from msta_jax.models import peft

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
  """LayerNorm computed in float32 and cast back (CLIP's fp16-safe LayerNorm; identical in fp32)."""
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (d,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (d,), jnp.float32)
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.square(x32 - mean).mean(-1, keepdims=True)  # Two-pass variance, as torch computes it.
    return ((x32 - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias).astype(x.dtype)


def heads_major_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  """Softmax attention computed heads-major. [B, L, N, H] x3 -> [B, L, N, H].

  Same maths as `jax.nn.dot_product_attention`'s XLA path (logits and softmax in float32), arranged
  for XLA:CPU: the batched matmuls run on [B, N, L, H] (its default [B, L, N, H] contraction makes
  XLA:CPU transpose around every small matmul), the scale goes on q (L*H products, not L*L), and the
  softmax is normalised after the PV matmul (L*H divisions, not L*L). The row max is a constant of
  the softmax, so no gradient flows through it.
  """
  q, k, v = (t.swapaxes(1, 2) for t in (q, k, v))  # [B, N, L, H]
  q = q * jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
  logits = jnp.einsum('bnqh,bnkh->bnqk', q, k, preferred_element_type=jnp.float32)
  if causal:
    n = logits.shape[-1]
    logits = jnp.where(jnp.tril(jnp.ones((n, n), bool)), logits, -jnp.inf)  # The diagonal stays finite.
  e = jnp.exp(logits - jax.lax.stop_gradient(logits.max(-1, keepdims=True)))
  out = jnp.einsum('bnqk,bnkh->bnqh', e.astype(v.dtype), v, preferred_element_type=jnp.float32)
  return (out / e.sum(-1, keepdims=True)).astype(v.dtype).swapaxes(1, 2)


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  """[B, L, N, H] x3 -> [B, L, N, H], by backend (read at trace time):
  - CPU: `heads_major_attention` (ViT-B/16, 8 images at 224 on 2 cores: attention 2.4x faster, the
    whole image forward about 1.2x; BENCHMARKS.md);
  - GPU with bf16/fp16 inputs and head size <= 128: cuDNN's fused (flash) kernel through
    `jax.nn.dot_product_attention`, which otherwise (implementation=None) runs the plain XLA path;
  - anything else: `jax.nn.dot_product_attention`'s XLA path.
  """
  backend = jax.default_backend()
  if backend == 'cpu':
    return heads_major_attention(q, k, v, causal=causal)
  cudnn = (backend == 'gpu' and q.dtype in (jnp.bfloat16, jnp.float16) and q.shape[-1] <= 128
           and q.shape[-1] % 8 == 0)
  return jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation='cudnn' if cudnn else None)


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
    out = attention(q[:, :, 0], k[:, :, 0], v[:, :, 0], causal=self.causal)
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
  """x + attn(ln_1(x)), then + mlp(ln_2(x)). [B, L, D] -> [B, L, D] ([B, 1, D]: first_token_only)."""
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
        LayerNorm(self.ln_eps, name='ln_1')(x))
    x = (x[:, :1] if self.first_token_only else x) + dp(h, train=train)
    normed = LayerNorm(self.ln_eps, name='ln_2')(x)
    h = Mlp(self.mlp_dim, self.activation, self.dtype, name='mlp')(normed)
    if self.adaptformer is not None:
      h = h + peft.AdaptMLP(self.adaptformer, self.dtype, name='adaptmlp')(normed)
    return x + dp(h, train=train)


class AdapterFactory(Protocol):
  """Builds the adapter of block `index` (0-based) or returns None for an unadapted block.

  The adapter is called as `adapter(x, *, train)` on the block's input and returns the already
  scaled residual to add to the block's output.
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
