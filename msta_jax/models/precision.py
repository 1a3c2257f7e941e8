"""Mixed precision: the one place that says which dtype each part of the model computes in.

`config.model.dtype` (the modules' `dtype` attribute) is the COMPUTE dtype. Everything else is fixed:

    what                                                               dtype
    parameters (stored, updated by the optimizer)                      float32
    matmuls: Dense layers, patch conv, projections, adapter layers      compute
    attention: q/k/v, QK^T and PV matmuls                              compute
    softmax statistics (logits, row max, exp, row sums)                float32
    residual stream (embeddings + positions, every block's in/out)     float32
    LayerNorm statistics; ln_pre / ln_post / ln_final outputs          float32
    LayerNorm outputs that feed a matmul (ln_1, ln_2, adapter LN)      compute
    branch outputs (attention, MLP) added to the stream                compute -> float32, then add
    the adapter's add: lambda * A scaled and added                     float32
    embeddings returned by encode_*, logits, losses                    float32

Why the stream stays float32: MSTA adds lambda * A (lambda = 0.005, |A| ~ 1) to a residual stream of
several units. Rounded to bfloat16 (8 bits of mantissa) at every block, that small term loses most of
its value (~80% at std 5; tests/models/precision_test.py). PyTorch autocast keeps the stream in float32
for the same reason. The matmuls, which are the FLOPs, still run in the compute dtype.

float16 is not offered: without dynamic loss scaling its gradients underflow, and bfloat16 runs at the
same speed on every accelerator this project targets (A100/H100/H200, TPU). `compute_dtype` says so.

With compute = float32 every cast here is the identity, so the float32 path computes exactly what it
did before this policy (tests/models/precision_test.py pins its outputs).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PARAMS = jnp.float32    # Stored parameters.
RESIDUAL = jnp.float32  # Residual stream, normalisation statistics, softmax statistics, outputs.
COMPUTE_DTYPES: dict[str, Any] = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
_REMOVED = {
    'float16': 'float16 was removed: it needs dynamic loss scaling, which this trainer does not do; use '
               "'bfloat16' (same tensor-core speed on A100/H100/H200 and TPUs, float32's exponent range)",
}


def compute_dtype(name: str, key: str = 'config.model.dtype'):
  """The jnp dtype of a compute-dtype name; a clear error for anything else (`key` names the setting)."""
  if name in _REMOVED:
    raise ValueError(f'{key}={name!r}: {_REMOVED[name]}')
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'{key}={name!r}; allowed: {sorted(COMPUTE_DTYPES)}')
  return COMPUTE_DTYPES[name]


def to_stream(x: jax.Array) -> jax.Array:
  """A branch output (or an embedding) joins the float32 residual stream."""
  return x.astype(RESIDUAL)


def matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x @ w with both operands in the compute dtype, the result in float32 (heads / projections). The
  cast follows the matmul: XLA:CPU has no bf16 x bf16 -> f32 dot."""
  return jnp.matmul(x.astype(dtype), w.astype(dtype)).astype(RESIDUAL)
