"""The train step: loss, gradients w.r.t. the trainable subtree only, optimizer update. Written once;
the trainer jits it with shardings, the summary tool and benchmarks compile it as is.

Imports neither TensorFlow nor clu, so it runs where neither is installed (the GPU benchmark host).

State is a plain dict: {'trainable': params that train, 'opt': optimizer state, 'step': int32,
'rng': key}. The frozen backbone is a separate argument that is never donated nor updated: gradients are
taken w.r.t. `trainable` with the frozen tree closed over, so blocks before the first adapted block get
no backward pass at all. The optimizer (optax.partition) still sees one full tree: the frozen leaves of
the gradient are zeros, which XLA removes.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from msta_jax.train import partition

State = dict[str, Any]


def init_state(trainable: dict, frozen: dict, tx: optax.GradientTransformation, rng: jax.Array) -> State:
  return {'trainable': trainable, 'opt': tx.init(partition.merge(trainable, frozen)),
          'step': jnp.zeros((), jnp.int32), 'rng': rng}


def train_step(state: State, frozen: dict, batch: dict, task: dict, *, model, tx: optax.GradientTransformation,
               labels: dict, loss_fn: Callable, loss_kwargs: dict | None = None) -> tuple[State, dict]:
  """One optimisation step. Returns (new state, metrics dict of scalars)."""
  rng = jax.random.fold_in(state['rng'], state['step'])

  def objective(trainable):
    params = partition.merge(trainable, frozen)
    return loss_fn(model, params, batch, task, rng=rng, train=True, **(loss_kwargs or {}))

  (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state['trainable'])
  full_grads = partition.merge(grads, jax.tree.map(jnp.zeros_like, frozen))
  full_params = partition.merge(state['trainable'], frozen)
  updates, opt = tx.update(full_grads, state['opt'], full_params)
  trainable_updates, _ = partition.split(updates, labels)
  new_trainable = optax.apply_updates(state['trainable'], trainable_updates)
  metrics = dict(metrics, grad_norm=optax.tree.norm(grads), loss=loss)
  return {'trainable': new_trainable, 'opt': opt, 'step': state['step'] + 1, 'rng': state['rng']}, metrics


def make_train_step(**static) -> Callable:
  """train_step with its static arguments (model, tx, labels, loss_fn, loss_kwargs) bound."""
  return functools.partial(train_step, **static)


def optimizer_floats(opt_state: Any) -> int:
  """Floating-point numbers held by an optimizer state (moments; step counters excluded)."""
  return sum(int(x.size) for x in jax.tree.leaves(opt_state)
             if jnp.issubdtype(getattr(x, 'dtype', jnp.int32), jnp.floating))
