"""The summary tool: counts, optimizer floats, FLOPs ratio; tiny configs plus one full-size run."""
import json
import subprocess
import sys

import pytest

from configs import ssv2_fewshot
from msta_jax.tools import summary


def _tiny(config):
  with config.unlocked():
    config.model.name, config.model.image_size, config.batch_size = 'tiny_viclip', 32, 4
  return config


def test_tiny_summary_numbers():
  config = _tiny(ssv2_fewshot.get_config())
  config.msta.first_block, config.msta.last_block, config.msta.bottleneck = 2, 2, 8
  table, result = summary.summarize(config, num_classes=5)
  assert result['trainable_params'] == (64 * 8 + 8) * 2 + (8 * 8 + 8) + (8 * 64 + 64) * 2 + (3 * 64 + 64)
  assert result['optimizer_state_floats'] == 2 * result['trainable_params']
  assert 1.0 < result['train_step_over_forward'] < 2.0
  assert table.splitlines()[-1].split()[1:] == [f"{result['trainable_params']:,}", f"{result['frozen_params']:,}"]


def test_full_finetune_costs_about_three_forwards():
  config = _tiny(ssv2_fewshot.get_config())
  config.msta.enabled = False
  config.freeze = (('.*', 'trainable'),)
  _, result = summary.summarize(config, num_classes=5)
  assert result['frozen_params'] == 0 and result['train_step_over_forward'] > 2.5


@pytest.mark.slow
def test_cli_full_size_ssv2_fewshot():
  out = subprocess.run([sys.executable, '-m', 'msta_jax.tools.summary', '--config=configs/ssv2_fewshot.py'],
                       capture_output=True, text=True, check=True)
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['trainable_params'] == 1_744_000 and result['frozen_params'] == 149_603_841
  assert result['optimizer_state_floats'] == 3_488_000
  assert result['train_step_over_forward'] < 2.0
  assert result['num_classes'] == 174 and result['batch'] == 32
