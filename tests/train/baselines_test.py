"""Every method trains a few steps on the synthetic set with exactly the intended trainable set."""
import os

import pytest
from safetensors.numpy import load_file

from configs import methods, synthetic
from msta_jax.train import trainer

SMALL = 'val_per_class=2,test_per_class=2,pretrain_per_class=2'
W, D, V = 64, 32, 49408          # tiny_clip width, adapter bottleneck, vocabulary.
K = synthetic.get_config().msta.temporal_kernel  # 5 taps on the demo's tiny backbone.
DOWN, MID, UP, CONV = W * D + D, D * D + D, D * W + W, K * W + W


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('datasets'))


def _run(data_dir, workdir, method, protocol='few_shot'):
  c = synthetic.get_config(f'protocol={protocol},method={method},shots=2')
  c.data.data_dir, c.data.generator_args = data_dir, SMALL
  c.batch_size, c.eval.batch_size, c.total_steps, c.log_every_steps = 16, 64, 2, 1
  c.optim.epochs = 2 / 12 if method != 'zero_shot' else 0.0
  c.lora.update(first_block=1, last_block=2)
  c.adaptformer.update(first_block=1, last_block=2)
  c.eval.every_epochs = 1.0
  c.lock()
  return trainer.train_and_evaluate(c, workdir)


TOTAL = 3_385_089  # tiny_clip's parameters (the 49408 x 64 token embedding is 3,162,112 of them).
EXPECTED = {
    'msta': 2 * (2 * DOWN + MID + 2 * UP) + 2 * CONV,
    'msta_no_temporal_conv': 2 * (2 * DOWN + MID + 2 * UP),
    'msta_language_only': 2 * (DOWN + MID + UP),
    'msta_vision_only': 2 * (DOWN + MID + UP + CONV),
    'msta_no_shared': 2 * (2 * DOWN + 2 * MID + 2 * UP) + 2 * CONV,
    'msta_no_consistency': 2 * (2 * DOWN + MID + 2 * UP) + 2 * CONV,
    'linear_probe': W * 96,
    'lora': 2 * 2 * 2 * (W * 8 + 8 * W),         # towers x blocks x (q, v), rank 8, no biases.
    'adaptformer': 2 * 2 * (W * 64 + 64 + 64 * W + W),  # towers x blocks x (down + up), bottleneck 64.
    'full_finetune': TOTAL,
    'frame_average': TOTAL - V * W,               # ViFi-CLIP never trains the token table.
}


@pytest.mark.parametrize('method', sorted(EXPECTED))
def test_method_trains_exactly_its_parameters(data_dir, tmp_path, method):
  res = _run(data_dir, str(tmp_path), method)
  assert res['trainable_params'] == EXPECTED[method]
  added = EXPECTED[method] if method.startswith('msta') or method in ('linear_probe', 'lora', 'adaptformer') else 0
  assert res['trainable_params'] + res['frozen_params'] == TOTAL + added
  assert res['frozen_unchanged'] and res['method'] == method
  saved = load_file(os.path.join(tmp_path, 'adapters.safetensors'))
  assert sum(v.size for v in saved.values()) == EXPECTED[method]
  assert res['test']['few_shot_test']['num_videos'] == 96 * 2


def test_zero_shot_trains_nothing_and_linear_probe_skips_unseen_classes(data_dir, tmp_path):
  res = _run(data_dir, str(tmp_path / 'zs'), 'zero_shot')
  assert res['steps'] == 0 and res['trainable_params'] == 0 and 'no training' in res['selection']['why']
  res = _run(data_dir, str(tmp_path / 'lp'), 'linear_probe', protocol='base_to_novel')
  assert res['test']['b2n_novel_test']['top1'] is None and res['test']['b2n_base_test']['top1'] is not None
  assert res['base_novel']['hm'] is None


def test_every_registered_method_is_known():
  assert set(EXPECTED) | {'zero_shot', 'pretrain', 'msta_n1', 'msta_n2', 'msta_n4', 'msta_n8'} <= set(methods.METHODS)
