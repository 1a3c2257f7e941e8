"""Softmax attention, [B, L, N, H] x3 -> [B, L, N, H], with the kernel chosen per (platform, dtype).

`select(platform, dtype, head_dim)` is the one rule (tests/models/attention_test.py pins it):

    platform  compute dtype    implementation   what runs
    cpu       any              heads_major      XLA einsums laid out heads-major (2.4x XLA's layout on CPU)
    gpu       bfloat16         cudnn            cuDNN's fused flash kernel (jax.nn.dot_product_attention);
                                                head size <= 128 and a multiple of 8, else xla
    gpu       float32          xla              jax.nn.dot_product_attention's XLA path: cuDNN's fused
                                                kernel takes no float32, so the [B, N, L, L] float32
                                                logits are materialised; QK^T and PV run as TF32
                                                tensor-core matmuls under JAX's default precision
    tpu       any              splash           the Pallas splash-attention kernel (blocks of 128,
                                                sequence padded up, padded keys masked out); xla when
                                                this jax has no splash kernel
    other     any              xla

Every implementation keeps the softmax statistics in float32 (logits, row max, exp sums) whatever the
compute dtype (models/precision.py) and returns the dtype of v. The splash kernel is checked here only
in Pallas interpret mode on CPU (values and gradients against `xla`); no TPU was available to time it.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

SPLASH_BLOCK = 128


def heads_major_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  """The XLA path's maths (logits and softmax in float32), arranged for XLA:CPU: the batched matmuls
  run on [B, N, L, H] (its default [B, L, N, H] contraction makes XLA:CPU transpose around every small
  matmul), the scale goes on q (L*H products, not L*L), and the softmax is normalised after the PV
  matmul (L*H divisions, not L*L). The row max is a constant of the softmax: no gradient through it.
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


def xla_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  return jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation='xla')


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  return jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation='cudnn')


def _splash_module():
  """jax's Pallas splash-attention kernel, or None where this jax does not ship it."""
  try:
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel, splash_attention_mask
  except ImportError:
    return None
  return splash_attention_kernel, splash_attention_mask


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool,
                     interpret: bool = False) -> jax.Array:
  """The Pallas splash kernel (TPU; `interpret=True` runs it anywhere, slowly, for tests).

  The kernel wants [N, L, H] per example and L a multiple of its block: ViCLIP-B/16's 1569 tokens are
  padded to 1664 and the padded keys masked out (padded query rows are computed and dropped). It does
  not scale the logits, so q is scaled first, as in `heads_major_attention`.
  """
  kernel_lib, mask_lib = _splash_module()
  b, l, n, h = q.shape
  padded = -(-l // SPLASH_BLOCK) * SPLASH_BLOCK
  mask = np.zeros((padded, padded), bool)
  mask[:, :l] = True
  if causal:
    mask &= np.tril(np.ones((padded, padded), bool))
  blocks = kernel_lib.BlockSizes(**{f: SPLASH_BLOCK for f in (
      'block_q', 'block_kv', 'block_kv_compute', 'block_q_dkv', 'block_kv_dkv', 'block_kv_dkv_compute',
      'block_q_dq', 'block_kv_dq')})
  kernel = kernel_lib.make_splash_mha(mask_lib.MultiHeadMask([mask_lib.NumpyMask(mask)] * n),
                                      block_sizes=blocks, head_shards=1, q_seq_shards=1, interpret=interpret)
  q = q * jnp.asarray(h ** -0.5, q.dtype)
  q, k, v = (jnp.pad(t.swapaxes(1, 2), ((0, 0), (0, 0), (0, padded - l), (0, 0))) for t in (q, k, v))
  out = jax.vmap(kernel)(q, k, v)  # [B, N, padded, H]
  return out[:, :, :l].astype(v.dtype).swapaxes(1, 2)


# Registry: implementation name -> function(q, k, v, *, causal).
IMPLEMENTATIONS: dict[str, Callable[..., jax.Array]] = {
    'heads_major': heads_major_attention,
    'xla': xla_attention,
    'cudnn': cudnn_attention,
    'splash': splash_attention,
}


def _gpu(dtype, head_dim: int) -> str:
  fused = dtype in (jnp.bfloat16, jnp.float16) and head_dim <= 128 and head_dim % 8 == 0
  return 'cudnn' if fused else 'xla'


# Per platform: (compute dtype, head size) -> implementation name.
_RULES: dict[str, Callable[..., str]] = {
    'cpu': lambda dtype, head_dim: 'heads_major',
    'gpu': _gpu,
    'tpu': lambda dtype, head_dim: 'splash' if _splash_module() is not None else 'xla',
}


def select(platform: str, dtype, head_dim: int) -> str:
  """The implementation `attention` runs for inputs of `dtype` and `head_dim` on `platform`."""
  rule = _RULES.get(platform)
  return rule(jnp.dtype(dtype), head_dim) if rule is not None else 'xla'


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool) -> jax.Array:
  """[B, L, N, H] x3 -> [B, L, N, H] through `select`'s implementation for the default backend
  (read at trace time)."""
  impl = select(jax.default_backend(), q.dtype, q.shape[-1])
  return IMPLEMENTATIONS[impl](q, k, v, causal=causal)
