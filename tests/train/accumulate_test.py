"""Gradient accumulation: the classification loss's accumulated gradient is the full batch's (with
padding rows and a fully padded micro-batch), and the contrastive loss refuses accumulation."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from configs import tiny
from msta_jax import models
from msta_jax.train import accumulate, from_config, losses, partition, step

RULES = (('msta/.*', 'trainable'), ('.*', 'frozen'))


def _setup():
  model = models.get_model('tiny_viclip', msta=models.MSTAConfig(first_block=1, last_block=2, bottleneck=8,
                                                                  up_init='kaiming'))
  params = models.add_adapters(model, models.init_params(models.get_model('tiny_viclip'), jax.random.PRNGKey(0)),
                               jax.random.PRNGKey(1))
  labels = partition.param_labels(params, RULES)
  tr, fr = partition.split(params, labels)
  rng = np.random.RandomState(0)
  mask = np.array([1, 1, 1, 0, 1, 1, 1, 0], np.float32)  # Micro-batch 3 (rows 3 and 7 of 4) is all padding.
  batch = {'video': jnp.asarray(rng.randn(8, 8, 32, 32, 3) * mask[:, None, None, None, None], jnp.float32),
           'label': jnp.array([0, 1, 2, 0, 2, 1, 0, 0]), 'mask': jnp.asarray(mask)}
  ids, _ = models.Tokenizer(16)(['a video of a square.', 'a video of a circle.', 'a video of a star.'])
  e = model.cfg.embed_dim
  task = {'class_ids': jnp.asarray(ids), 'desc_spatial': jnp.asarray(rng.randn(3, e), jnp.float32),
          'desc_temporal': jnp.asarray(rng.randn(3, e), jnp.float32)}
  return model, labels, tr, fr, batch, task


def test_micro_batches_take_strided_rows():
  out = accumulate.micro_batches({'x': jnp.arange(8)}, 4)['x']
  np.testing.assert_array_equal(out, [[0, 4], [1, 5], [2, 6], [3, 7]])
  with pytest.raises(ValueError, match='does not split into 3 micro-batches'):
    accumulate.micro_batches({'x': jnp.arange(8)}, 3)


def test_accumulated_gradient_equals_full_batch_gradient():
  model, _, tr, fr, batch, task = _setup()

  def objective(t, b, rng):
    return losses.classification_loss(model, partition.merge(t, fr), b, task, rng=rng, train=True,
                                      consistency_weight=1.0, label_smoothing=0.1)

  rng = jax.random.PRNGKey(3)
  (loss, metrics), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(tr, batch, rng)
  (aloss, ametrics), agrads = jax.jit(lambda t, b, r: accumulate.value_and_grad(objective, t, b, r, 4))(tr, batch, rng)
  assert float(metrics['cc']) > 0 and float(jnp.abs(grads['msta']['video_1']['up']['kernel']).max()) > 0
  np.testing.assert_allclose(aloss, loss, rtol=1e-5)
  for k in metrics:
    np.testing.assert_allclose(ametrics[k], metrics[k], rtol=1e-5, err_msg=k)
  full, accumulated = traverse_util.flatten_dict(grads, sep='/'), traverse_util.flatten_dict(agrads, sep='/')
  assert full.keys() == accumulated.keys()
  for path, g in full.items():
    np.testing.assert_allclose(accumulated[path], g, rtol=1e-5, atol=1e-8, err_msg=path)


def test_train_step_with_accumulation_matches_one_big_step():
  model, labels, tr, fr, batch, task = _setup()
  tx = partition.make_optimizer(labels, optax.sgd(0.1))  # Linear in the gradient (Adam's first step is its sign).
  state = step.init_state(tr, fr, tx, jax.random.PRNGKey(2))
  outs = [jax.jit(step.make_train_step(model=model, tx=tx, labels=labels, loss_fn=losses.classification_loss,
                                       accum_steps=k))(state, fr, batch, task) for k in (1, 2)]
  (s1, m1), (s2, m2) = outs
  np.testing.assert_allclose(m2['grad_norm'], m1['grad_norm'], rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), s2['trainable'], s1['trainable'])
  assert not np.array_equal(s1['trainable']['msta']['video_1']['up']['kernel'], tr['msta']['video_1']['up']['kernel'])


def test_contrastive_accumulation_and_bad_values_are_refused():
  c = tiny.get_config()
  c.loss.name, c.optim.accum_steps = 'contrastive', 2
  with pytest.raises(ValueError, match='accum_steps > 1 with the contrastive loss'):
    from_config.validate(c)
  c.loss.name, c.optim.accum_steps = 'classification', 0
  with pytest.raises(ValueError, match=r'config.optim.accum_steps=0; expected an integer >= 1'):
    from_config.validate(c)
