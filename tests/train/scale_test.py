"""Every shipped protocol config and method, at tiny size (the same config with a tiny model), compiles
its train and eval steps through the summary tool's plan (the trainer's validation, mesh, shardings and
padded batches) at 32 fake CPU devices, and a subset covering each kind of program at 1, 8 and 16, with
shardings and shapes checked.

The device count is fixed when JAX starts, so each count runs in a subprocess:
`python -m tests.train.scale_test N` plans every case on N devices and prints one JSON line per case.
"""
import json
import os
import re
import subprocess
import sys

import pytest

# (config file, argument): each protocol config with its default method, every other method on one
# config (methods change the model and what trains; protocols change batches, views and class lists),
# and contrastive pre-training on the synthetic config (the video configs have no captions).
PROTOCOLS = ('hmdb_b2n', 'hmdb_fewshot', 'k400_b2n', 'k400_supervised', 'k400_zeroshot', 'ssv2_b2n',
             'ssv2_fewshot', 'ucf_b2n', 'ucf_fewshot')
DEVICE_COUNTS = (1, 8, 16, 32)
# Below the pod size, a subset that covers each kind of program (adapters, padded 512-clip batches, a
# probe's own parameters, contrastive pre-training) keeps the test in its time budget.
SUBSET = (('ssv2_fewshot', ''), ('k400_supervised', ''), ('ssv2_fewshot', 'method=linear_probe'),
          ('ssv2_fewshot', 'method=full_finetune'), ('synthetic', 'protocol=pretrain'))


def cases(devices: int = 32) -> list[tuple[str, str]]:
  """Every case at 32 devices, SUBSET below."""
  if devices < 32:
    return list(SUBSET)
  from configs import video_base
  out = [(p, '') for p in PROTOCOLS]
  # msta_n1..n8 change only how many descriptions are averaged into the targets: msta's program.
  out += [('ssv2_fewshot', f'method={m}') for m in video_base.METHODS
          if m != 'msta' and not re.fullmatch(r'msta_n\d+', m)]
  return out + [('synthetic', 'protocol=pretrain')]


def tiny(config):
  """The config with the tiny ViCLIP-style backbone: blocks clipped to its 2 layers, nothing else changed."""
  with config.unlocked():
    config.model.name, config.model.image_size, config.model.init = 'tiny_viclip', 32, ''
    for section in ('msta', 'lora', 'adaptformer'):
      config[section].first_block = min(config[section].first_block, 2)
      config[section].last_block = 2
  return config


def _check(name: str, arg: str) -> dict:
  import importlib

  import jax
  import numpy as np
  from jax.sharding import PartitionSpec as P

  from msta_jax.tools import summary
  config = tiny(importlib.import_module(f'configs.{name}').get_config(arg or None))
  num_classes = 5
  p = summary.plan(config, num_classes)
  n = jax.device_count()
  assert dict(p['mesh'].shape) == {'data': n, 'model': 1}
  rows, eval_rows = p['batch']['mask'].shape[0], p['eval_batch']['mask'].shape[0]
  assert rows % n == 0 and config.batch_size <= rows < config.batch_size + n, (rows, n)
  assert eval_rows % n == 0 and config.eval.batch_size <= eval_rows < config.eval.batch_size + n
  (state_in, frozen_in, batch_in, _), _ = p['train'].input_shardings
  for got, want in zip(jax.tree.leaves(state_in), jax.tree.leaves(p['state'])):
    assert got.is_equivalent_to(want.sharding, len(want.shape)), (got, want.sharding)
  assert all(s.spec == P('data') for s in jax.tree.leaves(batch_in))
  new_state, metrics = p['train'].out_info
  assert jax.tree.map(lambda a: (a.shape, a.dtype), new_state) == jax.tree.map(lambda a: (a.shape, a.dtype), p['state'])
  assert metrics['loss'].shape == ()
  out = p['evaluation'].out_info
  assert out['logits'].shape == (eval_rows, num_classes) and out['index'].shape == (eval_rows,)
  mem = p['train'].memory_analysis()
  return {'config': name, 'arg': arg, 'devices': n, 'rows': rows, 'eval_rows': eval_rows,
          'temp_bytes': int(mem.temp_size_in_bytes) if mem else None,
          'split_leaves': int(sum(not s.is_fully_replicated for s in jax.tree.leaves(state_in)))}


@pytest.mark.parametrize('devices', DEVICE_COUNTS)
def test_every_protocol_and_method_compiles_at(devices):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  run = subprocess.run([sys.executable, '-m', 'tests.train.scale_test', str(devices)], capture_output=True,
                       text=True, env=env, timeout=900)
  assert run.returncode == 0, run.stderr[-4000:]
  results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{')]
  assert [(r['config'], r['arg']) for r in results] == cases(devices)
  assert all(r['devices'] == devices for r in results)
  sup = next(r for r in results if r['config'] == 'k400_supervised')
  assert sup['rows'] == 512  # The recipe's batch on every device count: 512 divides by 1, 8, 16, 32.
  few = next(r for r in results if r['config'] == 'ssv2_fewshot' and not r['arg'])
  assert few['eval_rows'] == max(8, devices)  # Eval batch 8 padded to the device count.
  pretrain = next(r for r in results if r['config'] == 'synthetic')
  assert pretrain['rows'] % devices == 0


if __name__ == '__main__':
  for config_name, config_arg in cases(int(sys.argv[1])):
    print(json.dumps(_check(config_name, config_arg)), flush=True)
