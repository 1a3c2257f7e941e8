"""The summary tool: counts, optimizer floats, FLOPs ratio; tiny configs plus one full-size run."""
import json
import sys

import pytest

from configs import ssv2_fewshot
from msta_jax.tools import summary
from tests import device_count_runs


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
  # The trainer's mesh and batch rule on the 8 test devices: batch 4 padded to 8, eval batch 8 as is.
  assert result['devices'] == 8 and result['mesh'] == {'data': 8, 'model': 1}
  assert (result['batch'], result['padded_batch'], result['padded_eval_batch']) == (4, 8, 8)
  assert result['per_device_bytes'] == max(result['train_step_bytes'], result['eval_step_bytes']) > 0
  assert 'memory_optimized scheduler' in result['memory_source']


def test_fsdp_and_accumulation_lower_the_per_device_figure():
  config = _tiny(ssv2_fewshot.get_config())
  config.msta.first_block, config.msta.last_block = 1, 2
  config.msta.enabled, config.freeze = False, (('.*', 'trainable'),)  # Full fine-tuning: big optimizer state.
  config.batch_size = 32
  _, plain = summary.summarize(config, num_classes=5)
  config.sharding.preset, config.sharding.fsdp_min_bytes, config.optim.accum_steps = 'fsdp', 2**12, 4
  _, small = summary.summarize(config, num_classes=5)
  assert small['train_step_memory']['argument'] < plain['train_step_memory']['argument'] / 2
  assert small['train_step_bytes'] < plain['train_step_bytes']
  assert small['padded_batch'] == 32 and small['accum_steps'] == 4


def test_full_finetune_costs_about_three_forwards():
  config = _tiny(ssv2_fewshot.get_config())
  config.msta.enabled = False
  config.freeze = (('.*', 'trainable'),)
  _, result = summary.summarize(config, num_classes=5)
  assert result['frozen_params'] == 0 and result['train_step_over_forward'] > 2.5


# Full size at 16 devices (a v4-32 / v5e-16), through the command line, with the memory each config must fit
# (BENCHMARKS.md, "Memory per device"): a v5e chip's 16 GiB for ssv2_fewshot, a v4 chip's 32 GiB for the rest.
FULL_SIZE = {'ssv2_fewshot': 16 * 2**30, 'hmdb_fewshot': 32 * 2**30, 'k400_b2n': 32 * 2**30,
             'k400_zeroshot': 32 * 2**30, 'k400_supervised': 32 * 2**30}


@pytest.fixture(scope='module')
def full_size():
  commands = {name: [sys.executable, '-m', 'msta_jax.tools.summary', f'--config=configs/{name}.py']
              for name in FULL_SIZE}
  with device_count_runs.started(commands, devices=16) as futures:
    yield futures


@pytest.mark.slow
@pytest.mark.parametrize('name', list(FULL_SIZE))
def test_cli_full_size_at_16_devices(name, full_size):
  out = full_size[name].result()
  assert out.returncode == 0, out.stderr[-4000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result['devices'] == 16 and result['mesh'] == {'data': 16, 'model': 1}
  assert 0 < result['per_device_bytes'] < FULL_SIZE[name]
  if name == 'ssv2_fewshot':
    assert result['trainable_params'] == 1_744_000 and result['frozen_params'] == 149_603_841
    assert result['optimizer_state_floats'] == 3_488_000 and result['num_classes'] == 174
    assert (result['batch'], result['padded_batch'], result['padded_eval_batch']) == (32, 32, 16)
  if name == 'k400_supervised':
    assert (result['padded_batch'], result['accum_steps'], result['remat']) == (512, 2, True)
