"""Losses against hand computations in numpy."""
import jax
import jax.numpy as jnp
import numpy as np

from msta_jax import models
from msta_jax.train import losses


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_consistency_by_hand():
  rng = np.random.RandomState(0)
  w, s, t = (rng.randn(5, 7).astype(np.float32) for _ in range(3))
  want = np.mean(2 - np.sum(_unit(w) * _unit(s), -1) - np.sum(_unit(w) * _unit(t), -1))
  np.testing.assert_allclose(losses.consistency(w, s, t), want, rtol=1e-5)
  assert float(losses.consistency(w, w, w)) < 1e-6  # Perfect agreement costs nothing.


class _FixedModel:
  """Stands in for a CLIP: returns given embeddings, so the loss maths is checked alone."""

  def __init__(self, video, text):
    self.video, self.text = video, text

  def encode_video(self):
    pass

  def encode_text(self):
    pass

  def apply(self, variables, x, *, train, method, rngs):
    return self.video if method == self.encode_video else self.text


def test_classification_and_total_by_hand():
  rng = np.random.RandomState(1)
  v, w = rng.randn(4, 6).astype(np.float32), rng.randn(3, 6).astype(np.float32)
  s, t = rng.randn(3, 6).astype(np.float32), rng.randn(3, 6).astype(np.float32)
  label, mask = np.array([0, 2, 1, 2]), np.array([1, 1, 1, 0], np.float32)
  params = {'logit_scale': jnp.log(100.0)}
  task = {'class_ids': None, 'desc_spatial': s, 'desc_temporal': t}
  loss, m = losses.classification_loss(_FixedModel(v, w), params, {'video': None, 'label': label, 'mask': mask},
                                       task, rng=jax.random.PRNGKey(0), train=True, consistency_weight=0.5)
  logits = 100 * _unit(v) @ _unit(w).T
  logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) - logits.max(1, keepdims=True)
  ce = -(logp[np.arange(4), label] * mask).sum() / 3  # The padded 4th example does not count.
  cc = np.mean(2 - np.sum(_unit(w) * _unit(s), -1) - np.sum(_unit(w) * _unit(t), -1))
  np.testing.assert_allclose(m['ce'], ce, rtol=1e-5)
  np.testing.assert_allclose(m['cc'], cc, rtol=1e-5)
  np.testing.assert_allclose(loss, ce + 0.5 * cc, rtol=1e-5)
  np.testing.assert_allclose(m['top1'], np.mean((logits.argmax(1) == label)[:3]))


def test_consistency_targets_are_means_of_normalised_frozen_embeddings():
  backbone = models.get_model('tiny_viclip')
  params = models.init_params(backbone, jax.random.PRNGKey(0))
  descs = {'a': {'spatial': ['red square', 'a red box', 'unused'], 'temporal': ['moves left', 'slides left']},
           'b': {'spatial': ['blue circle', 'round blue'], 'temporal': ['grows', 'gets bigger']}}
  out = losses.consistency_targets(backbone, params, descs, ['b', 'a'], num=2)
  ids, _ = models.Tokenizer(16)(['blue circle', 'round blue'])
  e = np.asarray(backbone.apply({'params': params}, ids, method=backbone.encode_text))
  np.testing.assert_allclose(out['desc_spatial'][0], _unit(e).mean(0), atol=1e-5)
  assert out['desc_temporal'].shape == (2, 64)
