"""Schedules to the step: timm's per-step cosine (the authors' recipe) against their HMDB K=16 log, the
after-step shift, and our default cosine unchanged; the schedule tool on every protocol config."""
import json
import math
import subprocess
import sys

import numpy as np
import optax
import pytest

from msta_jax import config_files
from msta_jax.tools import schedule as schedule_tool
from msta_jax.train import from_config
from msta_jax.train import schedules

FEW_SHOT_CLASSES = {'hmdb': 51, 'ucf': 101, 'ssv2': 174}


def _timm_reference(t: int, lr: float, warmup: int, total: int) -> float:
  """timm CosineLRScheduler._get_lr (warmup_lr_init 0, no prefix, one cycle), written out by hand."""
  if t < warmup:
    return t * lr / warmup
  lr_min = lr / 100
  return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t / total))


def test_hmdb_k16_matches_the_authors_log():
  config = config_files.load('configs/hmdb_fewshot.py:shots=16,recipe=authors')
  out = schedule_tool.epoch_lrs(config, 816)
  assert out['steps_per_epoch'] == 25 and len(out['lr']) == 50
  for epoch, logged in ((1, 2.0e-4), (5, 9.75773e-4), (49, 1.0977e-5)):
    assert abs(out['lr'][epoch] - logged) <= 1e-9, (epoch, out['lr'][epoch])
  assert out['lr'][0] == 0.0 and out['lr'][4] == pytest.approx(8e-4, abs=1e-15)


@pytest.mark.parametrize('dataset', sorted(FEW_SHOT_CLASSES))
def test_every_few_shot_config_follows_the_same_rule(dataset):
  for shots in (2, 4, 8, 16):
    config = config_files.load(f'configs/{dataset}_fewshot.py:shots={shots},recipe=authors')
    videos = shots * FEW_SHOT_CLASSES[dataset]
    out = schedule_tool.epoch_lrs(config, videos)
    n = videos // 32
    assert out['steps_per_epoch'] == n
    want = [_timm_reference(e * n, 1e-3, 5 * n, 50 * n) for e in range(50)]
    np.testing.assert_allclose(out['lr'], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize('spec', ['hmdb_b2n.py', 'ucf_b2n.py', 'ssv2_b2n.py', 'k400_b2n.py', 'k400_supervised.py',
                                  'k400_zeroshot.py', 'hmdb_fewshot.py'])
def test_tool_runs_on_every_recipe_of_every_protocol(spec):
  for recipe in ('msta_jax', 'authors'):
    config = config_files.load(f'configs/{spec}:recipe={recipe}')
    out = schedule_tool.epoch_lrs(config, 10 * config.batch_size + 3)
    assert out['steps_per_epoch'] == 10 and len(out['lr']) == math.ceil(config.optim.epochs)
    floor = config.optim.lr / 100 if recipe == 'authors' else 0.0
    assert out['lr'][0] == 0.0 and min(out['lr'][1:]) > floor and max(out['lr']) <= config.optim.lr * (1 + 1e-6)


def test_after_step_shift_is_timms_and_the_default_cosine_is_unchanged():
  authors = config_files.load('configs/hmdb_fewshot.py:recipe=authors')
  f = schedules.schedule(authors.optim, 25)
  g = from_config.learning_rate(authors, 25)  # What the optimiser uses.
  assert float(g(0)) == 0.0 and float(g(1)) == float(f(0)) == 0.0
  for k in (2, 26, 125, 126, 700, 1249):
    assert float(g(k)) == float(f(k - 1))
  # The default cosine is optax's, bit for bit (the synthetic demo's numerics stay).
  ours = config_files.load('configs/synthetic.py')
  spe = 96 * 16 // 32
  total = int(round(ours.optim.epochs * spe))
  ref = optax.warmup_cosine_decay_schedule(0.0, ours.optim.lr, int(round(ours.optim.warmup_epochs * spe)), total,
                                           end_value=0.0)
  mine = from_config.learning_rate(ours, spe)
  assert all(float(mine(k)) == float(ref(k)) for k in range(0, total + 2, 7))


def test_recipe_argument_and_overrides():
  ours = config_files.load('configs/hmdb_fewshot.py')
  theirs = config_files.load('configs/hmdb_fewshot.py:recipe=authors', ['--config.optim.b2=0.999'])
  assert ours.recipe == 'msta_jax' and theirs.recipe == 'authors'
  assert (ours.optim.b1, ours.optim.b2, ours.optim.eps) == (0.9, 0.98, 1e-8)
  assert theirs.optim.b2 == 0.999  # An explicit override wins over the recipe.
  assert (theirs.optim.schedule, theirs.optim.lr_min_ratio, theirs.optim.lr_after_step) == ('timm_cosine', 0.01, True)
  assert (theirs.eval.test_every_epochs, theirs.eval.view_fusion, theirs.msta.up_init) == (5.0, 'softmax', 'kaiming')
  assert (ours.eval.test_every_epochs, ours.eval.view_fusion, ours.msta.up_init) == (0.0, 'logits', 'zeros')
  # Betas agree across the protocols of a recipe.
  for spec in ('k400_zeroshot.py', 'k400_supervised.py', 'ucf_b2n.py', 'ssv2_fewshot.py'):
    assert config_files.load(f'configs/{spec}').optim.b2 == 0.98
  with pytest.raises(ValueError, match=r"recipe='paper'; allowed: \('msta_jax', 'authors'\)"):
    config_files.load('configs/hmdb_fewshot.py:recipe=paper')
  for key, bad in (('eval.view_fusion', 'max'), ('eval.test_sampler', 'random'), ('optim.schedule', 'linear')):
    with pytest.raises(ValueError, match=rf"config.{key}='{bad}'; allowed"):
      from_config.validate(config_files.load('configs/tiny.py', [f'--config.{key}={bad}']))
  with pytest.raises(ValueError, match='only schedule .timm_cosine. has a floor'):
    schedules.schedule(config_files.load('configs/tiny.py', ['--config.optim.lr_min_ratio=0.01']).optim, 10)


def test_cli_prints_the_json_line_last():
  out = subprocess.run([sys.executable, '-m', 'msta_jax.tools.schedule',
                        '--config=configs/hmdb_fewshot.py:shots=16,recipe=authors', '--train_examples=816'],
                       capture_output=True, text=True, check=True)
  last = json.loads(out.stdout.strip().splitlines()[-1])
  assert last['steps_per_epoch'] == 25 and abs(last['lr'][5] - 9.75773e-4) <= 1e-9
