"""Gradient accumulation: one optimizer step over `steps` micro-batches of the global batch, for memory.

Micro-batch i is rows i, i+k, i+2k, ... of the global batch (k = steps), so each micro-batch stays
spread over every device of the 'data' axis (batching pads the batch to a multiple of data x k). The
classification loss is a mask-weighted mean: with m_i the mask sum of micro-batch i and M the batch's,
the full-batch loss is sum_i (m_i / M) * loss_i, and so are its gradient and its metrics. That holds
for any loss that is a mask-weighted mean over clips plus terms that do not depend on the batch (the
consistency loss): weights summing to 1 keep those terms whole. The contrastive loss is neither:
config validation refuses accumulation there (msta_jax/train/from_config.py).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def micro_batches(batch: dict, steps: int) -> dict:
  """[B, ...] -> [steps, B / steps, ...], micro-batch i holding rows i::steps."""
  def split(x):
    if x.shape[0] % steps:
      raise ValueError(f'batch of {x.shape[0]} rows does not split into {steps} micro-batches')
    return x.reshape((x.shape[0] // steps, steps) + x.shape[1:]).swapaxes(0, 1)
  return jax.tree.map(split, batch)


def value_and_grad(objective: Callable, params, batch: dict, rng: jax.Array, steps: int):
  """((loss, metrics), grads) of `objective(params, batch, rng) -> (loss, metrics)` over the whole
  batch, computed one micro-batch at a time (micro-batch i sees rng folded with i)."""
  total = jnp.maximum(batch['mask'].sum(), 1.0)
  grad_fn = jax.value_and_grad(objective, has_aux=True)

  def body(acc, xs):
    i, micro = xs
    out, grads = grad_fn(params, micro, jax.random.fold_in(rng, i))
    w = micro['mask'].sum() / total
    return jax.tree.map(lambda a, x: a + w * x, acc, (out, grads)), None

  shapes = jax.eval_shape(grad_fn, params, jax.tree.map(lambda x: x[0], micro_batches(batch, steps)), rng)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  (out, grads), _ = jax.lax.scan(body, zeros, (jnp.arange(steps), micro_batches(batch, steps)))
  return out, grads
