"""The train step: only the trainable subtree changes, frozen leaves stay bit-identical, and the
backward pass stops at the first adapted block."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from msta_jax import models
from msta_jax.train import losses, partition, step

RULES = (('msta/.*', 'trainable'), ('.*', 'frozen'))


@functools.lru_cache(maxsize=None)  # Tests share a setup (arrays are immutable): it costs most of their time.
def _setup(first_block=2, last_block=2, name='tiny_viclip'):
  msta = models.MSTAConfig(first_block=first_block, last_block=last_block, bottleneck=8)
  model = models.get_model(name, msta=msta)
  params = models.add_adapters(model, models.init_params(models.get_model(name), jax.random.PRNGKey(0)),
                               jax.random.PRNGKey(1))
  labels = partition.param_labels(params, RULES)
  tr, fr = partition.split(params, labels)
  tx = partition.make_optimizer(labels, optax.adamw(1e-2, weight_decay=1e-3))
  fn = step.make_train_step(model=model, tx=tx, labels=labels, loss_fn=losses.classification_loss)
  rng = np.random.RandomState(0)
  batch = {'video': jnp.asarray(rng.randn(4, 8, 32, 32, 3), jnp.float32),
           'label': jnp.array([0, 1, 2, 1]), 'mask': jnp.ones(4)}
  ids, _ = models.Tokenizer(16)(['a video of a square.', 'a video of a circle.', 'a video of a star.'])
  return model, tx, fn, tr, fr, batch, {'class_ids': jnp.asarray(ids)}


def test_frozen_leaves_bit_identical_and_loss_falls():
  _, tx, fn, tr, fr, batch, task = _setup()
  state = step.init_state(tr, fr, tx, jax.random.PRNGKey(2))
  frozen_before = jax.tree.map(np.array, fr)
  jfn = jax.jit(fn)
  first = None
  for _ in range(6):
    state, metrics = jfn(state, fr, batch, task)
    first = first if first is not None else float(metrics['loss'])
  assert float(metrics['loss']) < first
  jax.tree.map(np.testing.assert_array_equal, fr, frozen_before)
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state['trainable'], tr)
  assert all(v > 0 for v in jax.tree.leaves(moved))  # Every adapter leaf trained (up started at 0).
  assert step.optimizer_floats(state['opt']) == 2 * partition.count(tr)
  assert int(state['step']) == 6


def test_gradient_tree_holds_exactly_the_trainable_leaves_and_frozen_leaves_ignore_a_gradient():
  model, tx, _, tr, fr, batch, task = _setup()
  params = partition.merge(tr, fr)
  labels = traverse_util.flatten_dict(partition.param_labels(params, RULES), sep='/')
  trainable = {k for k, v in labels.items() if v == partition.TRAINABLE}
  assert trainable and all(k.startswith('msta/') for k in trainable) and len(trainable) < len(labels)

  def objective(t):
    return losses.classification_loss(model, partition.merge(t, fr), batch, task, rng=jax.random.PRNGKey(0),
                                      train=True)[0]
  grads = traverse_util.flatten_dict(jax.eval_shape(jax.grad(objective), tr), sep='/')  # Shapes: no compile.
  flat_params = traverse_util.flatten_dict(params, sep='/')
  assert set(grads) == trainable
  assert all(grads[k].shape == flat_params[k].shape for k in grads)

  # The optimizer given a gradient of ones on EVERY leaf (AdamW with weight decay would move any leaf):
  # frozen leaves get updates of exactly zero, trainable ones do not.
  fake = jax.tree.map(jnp.ones_like, params)
  updates, _ = jax.jit(tx.update)(fake, tx.init(params), params)
  for k, u in traverse_util.flatten_dict(updates, sep='/').items():
    moved = bool(np.any(np.asarray(u) != 0))
    assert moved == (k in trainable), k
  moved_params = optax.apply_updates(params, updates)
  jax.tree.map(np.testing.assert_array_equal, partition.split(moved_params, partition.param_labels(params, RULES))[1],
               fr)


def _backward_flops(first_block):
  model, tx, fn, tr, fr, batch, task = _setup(first_block=first_block, last_block=2)
  state = jax.eval_shape(lambda t, f: step.init_state(t, f, tx, jax.random.PRNGKey(0)), tr, fr)
  cost = jax.jit(fn).lower(state, fr, batch, task).compile().cost_analysis()
  return (cost[0] if isinstance(cost, list) else cost)['flops']


def test_no_backward_through_blocks_before_the_first_adapted_one():
  # Adapters in block 2 only vs blocks 1..2: the former must not differentiate through block 1.
  late, early = _backward_flops(2), _backward_flops(1)
  assert late < 0.95 * early
