"""The trainer on the synthetic dataset with a tiny model: loss, outputs, meshes, resume, NaN, config."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file

from configs import tiny
from msta_jax.train import trainer
from tests.train.host_stalls_test import strict_fetch  # noqa: F401 (a fixture)

SMALL = 'val_per_class=2,test_per_class=4,pretrain_per_class=2'


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('datasets'))


def _config(data_dir, mesh=(('data', 1), ('model', 1)), **over):
  c = tiny.get_config('shots=2')
  c.data.data_dir, c.data.generator_args = data_dir, SMALL
  c.batch_size, c.eval.batch_size, c.mesh = 16, 16, mesh
  c.optim.epochs, c.optim.warmup_epochs, c.eval.every_epochs = 1.0, 0.25, 0.5  # 12 steps, eval every 6
  c.log_every_steps = 6
  for k, v in over.items():
    section, _, field = k.rpartition('.')
    (c[section] if section else c)[field] = v
  c.lock()
  return c


def _adapters(workdir):
  return load_file(os.path.join(workdir, 'adapters.safetensors'))


def test_training_reduces_loss_and_writes_outputs(data_dir, tmp_path, caplog):
  config = _config(data_dir, **{'optim.lr': 1e-2})
  res = trainer.train_and_evaluate(config, f'file://{tmp_path}')  # A URL workdir (msta_jax.paths): its local path.
  assert res['train_loss_this_process_run']['last'] < res['train_loss_this_process_run']['first']
  assert res['selection']['checkpoint'] in (6, 12) and 'best validation top-1' in res['selection']['why']
  test = res['test']['few_shot_test']
  assert test['num_videos'] == 96 * 4 and test['temporal_chance'] == 50.0
  saved = json.load(open(tmp_path / 'results.json'))
  assert saved['test']['few_shot_test']['top1'] == test['top1']
  logits = np.load(tmp_path / 'logits' / 'few_shot_test.npz')
  assert logits['logits'].shape == (384, 96) and (logits['index'] == np.arange(384)).all()
  assert list(logits['video_id'][:2]) == ['few_shot_test/000000', 'few_shot_test/000001']  # Generated: stable ids.
  assert saved['data']['splits']['test']['few_shot_test'] == {'listed': 384, 'stored': 384, 'missing': 0,
                                                              'quarantined': 0, 'unusable_fraction': 0.0}
  assert saved['data']['partial'] is False and saved['data']['comparable_with_paper'] is True
  assert set(_adapters(tmp_path)) == {k for k in _adapters(tmp_path) if k.startswith('msta/')}
  assert res['trainable_params'] == sum(v.size for v in _adapters(tmp_path).values())
  assert saved['adapters'] == str(tmp_path / 'adapters.safetensors') and not os.path.exists('file:')
  adapters = (tmp_path / 'adapters.safetensors').read_bytes()
  with caplog.at_level('INFO'):  # The same command again resumes from the last checkpoint: the same outputs.
    again = trainer.train_and_evaluate(config, f'file://{tmp_path}')
  assert 'resumed from step 12' in caplog.text and not (tmp_path / 'run.lock').exists()
  assert again['test'] == res['test'] and (tmp_path / 'adapters.safetensors').read_bytes() == adapters


def test_meshes_agree_and_checkpoints_move_between_meshes(data_dir, tmp_path):
  runs = {}
  # ('data', 3): batches of 16 padded to 18 with mask-0 rows (msta_jax/train/batching.py), same numbers.
  for mesh in ((('data', 1), ('model', 1)), (('data', 8), ('model', 1)), (('data', 4), ('model', 2)),
               (('data', 3), ('model', 1))):
    runs[mesh] = trainer.train_and_evaluate(_config(data_dir, mesh=mesh), str(tmp_path / str(len(runs))))
  ref = runs[(('data', 1), ('model', 1))]
  for mesh, res in runs.items():
    assert res['test']['few_shot_test']['top1'] == pytest.approx(ref['test']['few_shot_test']['top1'], abs=0.6)
    a, b = _adapters(tmp_path / '0'), _adapters(tmp_path / str(list(runs).index(mesh)))
    for k in a:
      np.testing.assert_allclose(a[k], b[k], atol=2e-5, err_msg=f'{mesh} {k}')
  # Saved on (8, 1) at step 12; continue to step 18 on (4, 2), then to 24 on one device.
  workdir = str(tmp_path / '1')
  res = trainer.train_and_evaluate(_config(data_dir, mesh=(('data', 4), ('model', 2)), total_steps=18), workdir)
  assert res['steps'] == 18 and os.path.isdir(os.path.join(workdir, 'checkpoints', '18'))
  res = trainer.train_and_evaluate(_config(data_dir, total_steps=24), workdir)
  assert res['steps'] == 24 and res['train_loss_this_process_run']


def test_training_makes_no_implicit_transfer_between_logging_points(data_dir, tmp_path, strict_fetch):
  # 8 steps under config.transfer_guard='disallow' (the loop enters it for every step), logs every 3
  # (steps 3, 6, 8), one evaluation and save at step 6: steps 1-2, 4-5 and 7 run entirely inside it.
  res = trainer.train_and_evaluate(_config(data_dir, transfer_guard='disallow', log_every_steps=3, total_steps=8),
                                   str(tmp_path))
  assert res['steps'] == 8 and np.isfinite(res['train_loss_this_process_run']['last'])
  assert res['selection']['checkpoint'] in (6, 8)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path):
  with pytest.raises(FloatingPointError, match=r'loss is nan at step 1: stopping\. The last good checkpoint is step None'):
    trainer.train_and_evaluate(_config(data_dir, **{'loss.label_smoothing': float('nan')}), str(tmp_path))


def test_invalid_values_are_named(data_dir, tmp_path):
  with pytest.raises(ValueError, match=r"config.model.dtype='fp8'; allowed"):
    trainer.train_and_evaluate(_config(data_dir, **{'model.dtype': 'fp8'}), str(tmp_path))
  with pytest.raises(ValueError, match=r"config.sharding.preset='zero'; allowed"):
    trainer.train_and_evaluate(_config(data_dir, **{'sharding.preset': 'zero'}), str(tmp_path))


def _main(workdir, data_dir, *extra):
  return [sys.executable, '-m', 'msta_jax.main', '--config=configs/tiny.py:shots=2', f'--workdir={workdir}',
          f'--config.data.data_dir={data_dir}', f'--config.data.generator_args={SMALL}', '--config.batch_size=16',
          '--config.eval.batch_size=16', '--config.optim.epochs=2', '--config.eval.every_epochs=0.5',
          '--config.checkpoint.async_save=False', *extra]


def test_unknown_config_key_is_rejected(data_dir, tmp_path):
  out = subprocess.run(_main(tmp_path, data_dir, '--config.optim.learning_rate=1'), capture_output=True, text=True)
  assert out.returncode != 0
  assert ("unknown config key 'optim.learning_rate': config.optim has ['accum_steps', 'b1', 'b2', 'epochs'"
          in out.stderr)


def test_local_multiprocess_dry_run_prints_every_process():
  out = subprocess.run(['bash', 'launch/local_multiprocess.sh', '--num_processes=3', '--port=4000', '--dry_run', '--',
                        '--config=configs/tiny.py', '--workdir=/tmp/w'], capture_output=True, text=True, check=True)
  lines = out.stdout.strip().splitlines()
  assert len(lines) == 3 and all(f'--process_id={i}' in l and '127.0.0.1:4000' in l for i, l in enumerate(lines))
