"""The authors' recipe end to end: test-set evaluations during training (reported apart), softmax view
fusion, the clamped logit scale, ViCLIP's one-frame rule in encode_image; and the default unchanged."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from msta_jax import models
from msta_jax.data import normalize
from msta_jax.train import evaluate
from msta_jax.train import losses
from msta_jax.train import test_selection
from msta_jax.train import trainer

SMALL = 'val_per_class=2,test_per_class=2,pretrain_per_class=2'
HMDB_K16_LOG = (50.1, 66.3, 68.7, 68.4, 69.6, 70.4, 69.0, 69.9, 69.9, 69.8, 69.4)  # msta.md, epochs 0, 5, ..., 45, 49


def test_test_evaluation_steps_and_summary_follow_the_authors_log():
  steps = test_selection.eval_steps(5.0, 25, 50 * 25)
  assert list(steps.values()) == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 49]
  assert list(steps) == [25, 150, 275, 400, 525, 650, 775, 900, 1025, 1150, 1250]
  evals = [{'split': 'test', 'epoch': e, 'step': s, 'top1': a, 'top5': 90.0}
           for (s, e), a in zip(steps.items(), HMDB_K16_LOG)]
  out = test_selection.summary(evals)['test']
  assert (out['max']['top1'], out['max']['epoch'], out['last']['top1']) == (70.4, 25, 69.4)
  assert len(out['evaluations']) == 11 and out['label'].startswith('test-set selection')
  assert test_selection.eval_steps(0.0, 25, 1250) == {}
  with pytest.raises(ValueError, match='test_every_epochs=2.5: a whole number'):
    test_selection.eval_steps(2.5, 25, 1250)


def test_view_fusion_known_case():
  # One video, three views, two classes: mean logits pick class 0, mean softmax picks class 1.
  views = jnp.array([[[10.0, 0.0], [0.0, 2.0], [0.0, 2.0]]])
  np.testing.assert_allclose(losses.VIEW_FUSIONS['logits'](views), [[10 / 3, 4 / 3]], rtol=1e-6)
  p = 1 / (1 + np.exp(-2.0))  # softmax([0, 2])[1]
  want = [(1 / (1 + np.exp(-10.0)) + 2 * (1 - p)) / 3, (np.exp(-10.0) / (1 + np.exp(-10.0)) + 2 * p) / 3]
  np.testing.assert_allclose(losses.VIEW_FUSIONS['softmax'](views), [want], rtol=1e-6)
  assert int(jnp.argmax(losses.VIEW_FUSIONS['logits'](views))) == 0
  assert int(jnp.argmax(losses.VIEW_FUSIONS['softmax'](views))) == 1


@pytest.fixture(scope='module')
def tiny_viclip():
  model = models.get_model(models.get_config('tiny_viclip'))
  params = jax.device_get(jax.jit(lambda r: models.init_params(model, r))(jax.random.PRNGKey(0)))
  params['visual']['temporal_positional_embedding'] = jax.random.normal(
      jax.random.PRNGKey(1), params['visual']['temporal_positional_embedding'].shape)
  return model, params


def test_eval_fn_fuses_the_views_it_scores(tiny_viclip):
  model, params = tiny_viclip
  video = jax.random.randint(jax.random.PRNGKey(2), (2, 3, 8, 32, 32, 3), 0, 256).astype(jnp.uint8)  # 2 x 3 views
  normed = normalize.model_input(video, model.cfg.mean, model.cfg.std, 'test')  # What the eval fn sees.
  class_emb = jax.random.normal(jax.random.PRNGKey(3), (5, 64))
  per_view = losses.class_logits(model.apply({'params': params}, normed.reshape((6,) + video.shape[2:]),
                                             method=model.encode_video), class_emb, params['logit_scale'])
  per_view = np.asarray(per_view).reshape(2, 3, 5)
  batch = {'video': video, 'index': jnp.arange(2)}
  ours = evaluate.make_eval_fn(model)(params, batch, class_emb)['logits']
  theirs = evaluate.make_eval_fn(model, 'softmax')(params, batch, class_emb)['logits']
  np.testing.assert_allclose(ours, per_view.mean(1), rtol=1e-5, atol=1e-5)
  probs = np.exp(per_view - per_view.max(-1, keepdims=True))
  np.testing.assert_allclose(theirs, (probs / probs.sum(-1, keepdims=True)).mean(1), rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="view_fusion='max'"):
    evaluate.make_eval_fn(model, 'max')


def test_logit_scale_is_clamped_at_100_and_unchanged_below():
  v, c = jax.random.normal(jax.random.PRNGKey(0), (4, 8)), jax.random.normal(jax.random.PRNGKey(1), (3, 8))
  cos = np.asarray(losses.l2_normalize(v) @ losses.l2_normalize(c).T)
  np.testing.assert_allclose(losses.class_logits(v, c, jnp.log(400.0)), 100 * cos, rtol=1e-6)
  for s in (jnp.log(14.28), jnp.float32(4.6), jnp.log(99.9)):  # Below 100: bit-identical to the unclamped formula.
    old = jnp.exp(s) * losses.l2_normalize(v) @ losses.l2_normalize(c).T
    assert np.array_equal(np.asarray(losses.class_logits(v, c, s)), np.asarray(old))
    g_new = jax.grad(lambda x: losses.class_logits(v * x, c, s).sum())(1.5)
    g_old = jax.grad(lambda x: (jnp.exp(s) * losses.l2_normalize(v * x) @ losses.l2_normalize(c).T).sum())(1.5)
    assert float(g_new) == float(g_old)


def test_encode_image_of_a_joint_model_is_a_one_frame_video(tiny_viclip):
  model, params = tiny_viclip
  images = jax.random.normal(jax.random.PRNGKey(4), (3, 32, 32, 3))
  image = model.apply({'params': params}, images, method=model.encode_image)
  video = model.apply({'params': params}, images[:, None], method=model.encode_video)
  np.testing.assert_allclose(image, video, rtol=1e-5, atol=1e-6)
  # Without the rule (the frame alone) the embedding differs: the mean temporal embedding is not zero here.
  alone = model.apply({'params': params}, images, method=lambda m, x: m.visual(x))
  assert float(jnp.max(jnp.abs(alone - image))) > 1e-2


@pytest.fixture(scope='module')
def authors_run(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('datasets'))
  c = tiny.get_config('shots=2,recipe=authors')
  c.data.data_dir, c.data.generator_args = data_dir, SMALL
  c.batch_size, c.eval.batch_size, c.mesh = 32, 32, (('data', 1), ('model', 1))
  # 12 steps (6 per epoch), selection on val after each epoch, the test split after epochs 0 and 1.
  c.optim.update(epochs=2.0, warmup_epochs=0.5)
  c.eval.update(every_epochs=1.0, test_every_epochs=1.0)
  c.log_every_steps = 6
  c.lock()
  workdir = tmp_path_factory.mktemp('authors')
  return trainer.train_and_evaluate(c, str(workdir)), workdir


def test_authors_run_reports_test_set_selection_apart(authors_run):
  res, workdir = authors_run
  saved = json.load(open(workdir / 'results.json'))
  assert saved['recipe'] == 'authors'
  sel = saved['test_set_selection']['few_shot_test']
  assert [(e['epoch'], e['step']) for e in sel['evaluations']] == [(0, 6), (1, 12)]
  assert sel['last'] == sel['evaluations'][-1] and sel['max']['top1'] == max(e['top1'] for e in sel['evaluations'])
  assert 'test-set selection' in sel['label']
  # The held-out-selected checkpoint scored once more at the end gives the number its test evaluation gave.
  chosen = next(e for e in sel['evaluations'] if e['step'] == res['selection']['checkpoint'])
  assert chosen['top1'] == saved['test']['few_shot_test']['top1']
  assert chosen['top5'] == saved['test']['few_shot_test']['top5']
