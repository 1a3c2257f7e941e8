"""Every shipped protocol config and method, at tiny size (the same config with a tiny model), compiles
its train and eval steps through the summary tool's plan (the trainer's validation, mesh, shardings and
padded batches) at 1, 8, 16 and 32 fake CPU devices, with shardings and shapes checked.

The device count is fixed when JAX starts, so each count runs in a subprocess:
`python -m tests.train.scale_test N` lowers every case on N devices and prints one JSON line per case.
Lowering checks the batch rule and the shapes of every case. Many cases lower to the same program
(protocols that differ only in their lists, class names or schedule; msta_n1..n8, which change only
how many descriptions are averaged into the targets): each distinct program (its StableHLO text) is
compiled once per device count, and the compiled shardings are checked for every case. The compile
runs XLA's whole HLO pipeline (sharding propagation, the SPMD partitioner, buffer assignment) with
FAST_COMPILE: no LLVM optimisation, the classic emitters, one codegen thread. On jax 0.10.2 that takes
~6x less CPU than a run's options for the same partitioned program; jax 0.12 has no emitter switch
and the rest saves ~1.7x (memory figures are the summary tool's job, under a run's options).
"""
import hashlib
import json
import re
import sys

import pytest

from tests import device_count_runs

PROTOCOLS = ('hmdb_b2n', 'hmdb_fewshot', 'k400_b2n', 'k400_supervised', 'k400_zeroshot', 'ssv2_b2n',
             'ssv2_fewshot', 'ucf_b2n', 'ucf_fewshot')
DEVICE_COUNTS = (1, 8, 16, 32)
# Options the installed XLA knows (a newer one may drop a flag; each is only a speed-up).
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False,
                'xla_cpu_parallel_codegen_split_count': 1}
# fsdp at tiny size: leaves above 4 KiB split (the configs' 1 MiB threshold is for full-size leaves).
FSDP = {'sharding.preset': 'fsdp', 'sharding.fsdp_min_bytes': 2**12}


def cases() -> list[tuple[str, str, str]]:
  """(config, argument, 'fsdp' or ''): each protocol config with its default method, every other method on
  one config (methods change the model and what trains; protocols change batches, views and class lists),
  contrastive pre-training on the synthetic config (the video configs have no captions), and full
  fine-tuning with fsdp (the shipped configs replicate parameters)."""
  from configs import video_base
  out = [(p, '', '') for p in PROTOCOLS]
  out += [('ssv2_fewshot', f'method={m}', '') for m in video_base.METHODS if m != 'msta']
  return out + [('synthetic', 'protocol=pretrain', ''), ('ssv2_fewshot', 'method=full_finetune', 'fsdp')]


def tiny(config):
  """The config with the tiny ViCLIP-style backbone: blocks clipped to its 2 layers, nothing else changed."""
  with config.unlocked():
    config.model.name, config.model.image_size, config.model.init = 'tiny_viclip', 32, ''
    for section in ('msta', 'lora', 'adaptformer'):
      config[section].first_block = min(config[section].first_block, 2)
      config[section].last_block = 2
  return config


def _fast_options() -> dict:
  import jax
  probe = jax.jit(lambda x: x + 1).lower(jax.ShapeDtypeStruct((2,), 'float32'))
  known = {}
  for key, value in FAST_COMPILE.items():
    try:
      probe.compile({key: value})
      known[key] = value
    except jax.errors.JaxRuntimeError:
      pass
  return known


def _equivalent(got, want) -> bool:
  """Each sharding in `got` (a compiled program's; jit leaves out inputs it does not use) is the one the
  value at its path in `want` was placed with."""
  import jax
  placed = dict(jax.tree_util.tree_flatten_with_path(want)[0])
  found = jax.tree_util.tree_flatten_with_path(got)[0]
  return all(s.is_equivalent_to(placed[k].sharding, len(placed[k].shape)) for k, s in found)


def _check(name: str, arg: str, preset: str, compiled: dict, options: dict) -> dict:
  """Lowers one case, compiles its programs unless an identical one was (`compiled`: text hash -> program)."""
  import importlib

  import jax
  from jax.sharding import PartitionSpec as P

  from msta_jax.tools import summary
  from msta_jax.train import programs
  config = tiny(importlib.import_module(f'configs.{name}').get_config(arg or None))
  if preset:
    config.update_from_flattened_dict(FSDP)
  num_classes = 5
  p = summary.lower(config, num_classes)
  n = jax.device_count()
  assert dict(p['mesh'].shape) == {'data': n, 'model': 1}
  rows, eval_rows = p['batch']['mask'].shape[0], p['eval_batch']['mask'].shape[0]
  assert rows % n == 0 and config.batch_size <= rows < config.batch_size + n, (rows, n)
  assert eval_rows % n == 0 and config.eval.batch_size <= eval_rows < config.eval.batch_size + n
  shapes = lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree)
  new_state, metrics = p['train'].out_info
  assert shapes(new_state) == shapes(p['state'])
  assert metrics['loss'].shape == ()
  out = p['evaluation'].out_info
  assert out['logits'].shape == (eval_rows, num_classes) and out['index'].shape == (eval_rows,)

  digests = []
  for key, compile_fn in (('train', programs.compile_lowered), ('evaluation', jax.stages.Lowered.compile)):
    digest = hashlib.sha256(p[key].as_text().encode()).hexdigest()[:16]
    if digest not in compiled:
      compiled[digest] = compile_fn(p[key], options)
    digests.append(digest)
  train, evaluation = (compiled[d] for d in digests)
  (state_in, frozen_in, batch_in, _), _ = train.input_shardings
  assert _equivalent(state_in, p['state']) and _equivalent(frozen_in, p['frozen'])
  assert _equivalent(train.output_shardings[0], p['state'])  # The new state stays where the state was.
  assert all(s.spec == P('data') for s in jax.tree.leaves(batch_in))
  params_in, eval_batch_in, _ = evaluation.input_shardings[0]
  assert _equivalent(params_in, p['params'])
  assert all(s.spec == P('data') for s in jax.tree.leaves(eval_batch_in))
  return {'config': name, 'arg': arg, 'preset': preset, 'devices': n, 'rows': rows, 'eval_rows': eval_rows,
          'train': digests[0], 'evaluation': digests[1],
          'split_params': _split(state_in['trainable']), 'split_moments': _split(state_in['opt'])}


def _split(shardings) -> int:
  import jax
  return sum(not s.is_fully_replicated for s in jax.tree.leaves(shardings))


@pytest.fixture(scope='module')
def runs():
  commands = {n: [sys.executable, '-m', 'tests.train.scale_test', str(n)] for n in DEVICE_COUNTS}
  with device_count_runs.started(commands, devices={n: n for n in DEVICE_COUNTS}) as futures:
    yield futures


@pytest.mark.parametrize('devices', DEVICE_COUNTS)
def test_every_protocol_and_method_compiles_at(devices, runs):
  run = runs[devices].result()
  assert run.returncode == 0, run.stderr[-4000:]
  results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{')]
  assert [(r['config'], r['arg'], r['preset']) for r in results] == cases()
  assert all(r['devices'] == devices for r in results)
  by_case = {(r['config'], r['arg'], r['preset']): r for r in results}
  sup = by_case['k400_supervised', '', '']
  assert sup['rows'] == 512  # The recipe's batch on every device count: 512 divides by 1, 8, 16, 32.
  few = by_case['ssv2_fewshot', '', '']
  assert few['eval_rows'] == max(8, devices)  # Eval batch 8 padded to the device count.
  assert by_case['synthetic', 'protocol=pretrain', '']['rows'] % devices == 0
  # msta_n1..n8 average a different number of descriptions into the same program's inputs.
  averaging = [r for r in results if re.fullmatch(r'method=msta_n\d+', r['arg'])]
  assert averaging and all(r['train'] == few['train'] for r in averaging)
  # The shipped presets replicate every parameter; fsdp splits some (and their moments) on 8+ devices.
  assert all(r['split_params'] == r['split_moments'] == 0 for r in results if not r['preset'])
  fsdp = by_case['ssv2_fewshot', 'method=full_finetune', 'fsdp']
  # AdamW's two moments of each split parameter are split as it is.
  assert fsdp['split_moments'] == 2 * fsdp['split_params'] and (fsdp['split_params'] > 0) == (devices > 1), fsdp


if __name__ == '__main__':
  import jax
  jax.config.update('jax_enable_compilation_cache', False)  # Nothing here is compiled twice.
  options, programs_by_text = _fast_options(), {}
  for case in cases():
    print(json.dumps(_check(*case, programs_by_text, options)), flush=True)
  print(f'{len(programs_by_text)} distinct programs compiled with {options}', file=sys.stderr)
