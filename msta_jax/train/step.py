"""The train step: loss, gradients w.r.t. the trainable subtree only, optimizer update. Written once;
the trainer jits it with shardings, the summary tool and benchmarks compile it as is, all on the
abstract inputs of `abstract_batch` / `abstract_task`.

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

from msta_jax.train import accumulate
from msta_jax.train import partition

State = dict[str, Any]


def init_state(trainable: dict, frozen: dict, tx: optax.GradientTransformation, rng: jax.Array) -> State:
  return {'trainable': trainable, 'opt': tx.init(partition.merge(trainable, frozen)),
          'step': jnp.zeros((), jnp.int32), 'rng': rng}


def train_step(state: State, frozen: dict, batch: dict, task: dict, *, model, tx: optax.GradientTransformation,
               labels: dict, loss_fn: Callable, loss_kwargs: dict | None = None,
               accum_steps: int = 1) -> tuple[State, dict]:
  """One optimisation step (over `accum_steps` micro-batches). Returns (new state, metrics of scalars)."""
  rng = jax.random.fold_in(state['rng'], state['step'])

  def objective(trainable, batch, rng):
    params = partition.merge(trainable, frozen)
    return loss_fn(model, params, batch, task, rng=rng, train=True, **(loss_kwargs or {}))

  if accum_steps == 1:
    (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state['trainable'], batch, rng)
  else:
    (loss, metrics), grads = accumulate.value_and_grad(objective, state['trainable'], batch, rng, accum_steps)
  full_grads = partition.merge(grads, jax.tree.map(jnp.zeros_like, frozen))
  full_params = partition.merge(state['trainable'], frozen)
  updates, opt = tx.update(full_grads, state['opt'], full_params)
  trainable_updates, _ = partition.split(updates, labels)
  new_trainable = optax.apply_updates(state['trainable'], trainable_updates)
  metrics = dict(metrics, grad_norm=optax.tree.norm(grads), loss=loss)
  return {'trainable': new_trainable, 'opt': opt, 'step': state['step'] + 1, 'rng': state['rng']}, metrics


def abstract_batch(cfg, batch_size: int, *, captions: bool = False, sharding=None) -> dict[str, Any]:
  """One global batch of the step as ShapeDtypeStructs, for a models.ModelConfig `cfg`:
  video [B, T, H, W, 3] float32, label [B] int32, mask [B] float32 (0 for padding), and with
  `captions` (contrastive pre-training) caption_ids [B, L] int32. `sharding` goes on every entry."""
  v = cfg.vision
  shapes = {'video': ((batch_size, v.num_frames, v.image_size, v.image_size, 3), jnp.float32),
            'label': ((batch_size,), jnp.int32), 'mask': ((batch_size,), jnp.float32)}
  if captions:
    shapes['caption_ids'] = ((batch_size, cfg.text.context_length), jnp.int32)
  return {k: jax.ShapeDtypeStruct(shape, dtype, sharding=sharding) for k, (shape, dtype) in shapes.items()}


def abstract_task(cfg, num_classes: int, *, descriptions: bool) -> dict[str, Any]:
  """The per-run task inputs of the classification loss as ShapeDtypeStructs: class_ids [C, L] int32,
  and with `descriptions` (consistency loss) desc_spatial / desc_temporal [C, E] float32."""
  task = {'class_ids': jax.ShapeDtypeStruct((num_classes, cfg.text.context_length), jnp.int32)}
  if descriptions:
    task['desc_spatial'] = task['desc_temporal'] = jax.ShapeDtypeStruct((num_classes, cfg.embed_dim),
                                                                        jnp.float32)
  return task


def make_train_step(**static) -> Callable:
  """train_step with its static arguments (model, tx, labels, loss_fn, loss_kwargs, accum_steps) bound."""
  return functools.partial(train_step, **static)


def optimizer_floats(opt_state: Any) -> int:
  """Floating-point numbers held by an optimizer state (moments; step counters excluded)."""
  return sum(int(x.size) for x in jax.tree.leaves(opt_state)
             if jnp.issubdtype(getattr(x, 'dtype', jnp.int32), jnp.floating))
