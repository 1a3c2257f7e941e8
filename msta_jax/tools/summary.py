"""What a config builds and what one step costs per device, without weights or data.

    XLA_FLAGS=--xla_force_host_platform_device_count=16 \
      python -m msta_jax.tools.summary --config=configs/ssv2_fewshot.py [--config.optim.accum_steps=2 ...]

The memory plan before step 1 on a cluster: the config goes through the trainer's own validation
(all but the presence of the backbone weights, which are never read: the architecture is
config.model.name), mesh, shardings and batch rule (msta_jax.train.batching pads the global batch to
the device count), and the train step and the evaluation step are compiled (never run) for the
devices this process sees, exactly as the trainer compiles them (msta_jax.train.programs and
msta_jax.train.evaluate). Fake CPU devices (the XLA flag above) stand in for a pod's chips: the
per-device figures are XLA:CPU's buffer assignment of the partitioned programs under its
memory-optimized scheduler (`--scheduler`), a planning figure for accelerators, whose own schedulers
decide the real peak.

Prints trainable / frozen parameters per module, then, LAST, one JSON object: devices, mesh,
per_device_bytes (the larger of the train and eval steps), train_step_bytes, eval_step_bytes,
memory_source, trainable_params, frozen_params, optimizer_state_floats, forward_flops,
train_step_flops (per device; with accum_steps > 1 XLA's cost analysis counts the micro-batch
loop's body once), train_step_over_forward, batch / padded_batch (train),
eval_batch / padded_eval_batch, accum_steps, dtype, remat, sharding.
"""
from __future__ import annotations

import json

import jax
from absl import app, flags
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import config_flags

from msta_jax import compilation
from msta_jax import models
from msta_jax.data import classes
from msta_jax.data import pipeline
from msta_jax.train import batching
from msta_jax.train import evaluate
from msta_jax.train import from_config
from msta_jax.train import losses
from msta_jax.train import partition
from msta_jax.train import programs
from msta_jax.train import sharding
from msta_jax.train import step
from msta_jax.train import tasks


def _placed(tree, shardings):
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), tree, shardings)


def plan(config, num_classes: int, scheduler: str = 'memory_optimized') -> dict:
  """The trainer's programs for `config` on this process's devices, compiled, with their inputs:
  train (compiled), evaluation (compiled), state, frozen, batch, eval_batch, task (sharded abstract
  values), and mesh, model, labels, shapes, trainable, frozen_shapes, options for the caller."""
  p = lower(config, num_classes)
  options = programs.SCHEDULERS[scheduler]
  return dict(p, train=programs.compile_lowered(p['train'], options), evaluation=p['evaluation'].compile(options),
              options=options)


def lower(config, num_classes: int) -> dict:
  """`plan` before compilation: train and evaluation are the lowered programs (jax.stages.Lowered)."""
  checked = config.copy_and_resolve_references()
  with checked.unlocked():
    checked.model.init = ''  # Weights are never read here; everything else is validated as a run would.
  from_config.validate(checked)
  mesh, pcount = sharding.make_mesh(config), jax.process_count()
  arch = from_config.architecture(config)
  model = from_config.build_model(config, arch)
  shapes = models.param_shapes(model)
  if config.method == 'linear_probe':  # The trainer adds the probe's class vectors to the parameters.
    shapes = dict(shapes, probe={'kernel': jax.ShapeDtypeStruct((arch.embed_dim, num_classes), jax.numpy.float32)})
  labels = partition.param_labels(shapes, config.freeze)
  trainable, frozen = partition.split(shapes, labels)
  tx = from_config.build_optimizer(config, labels, steps_per_epoch=100)
  state = jax.eval_shape(lambda t, f: step.init_state(t, f, tx, jax.random.PRNGKey(0)), trainable, frozen)
  trainable_sh = sharding.param_shardings(trainable, config.sharding, mesh)
  frozen_sh = sharding.param_shardings(frozen, config.sharding, mesh)
  state_sh = sharding.state_shardings(state, trainable_sh, mesh)
  state, frozen_a = _placed(state, state_sh), _placed(frozen, frozen_sh)
  repl = NamedSharding(mesh, P())
  batch = batching.abstract_train_batch(config, arch, mesh, pcount)
  task_shapes = step.abstract_task(arch, num_classes, descriptions=bool(config.loss.consistency_weight))
  task = _placed(task_shapes, jax.tree.map(lambda _: repl, task_shapes))
  clip = pipeline.ClipSpec(arch.vision.num_frames, arch.vision.image_size, tuple(arch.mean), tuple(arch.std))
  train = programs.lower_train_step(config, model, tx, labels, mesh, state_sh, frozen_sh, state, frozen_a, batch,
                                    task, clip)

  params = partition.merge(state['trainable'], frozen_a)
  evaluator = evaluate.Evaluator(config, model, mesh, None, clip, jax.process_index(), pcount)
  eval_batch = batching.abstract_eval_batch(config, arch, mesh, pcount)
  class_emb = jax.ShapeDtypeStruct((num_classes, arch.embed_dim), jax.numpy.float32, sharding=repl)
  evaluation = evaluator.score.lower(params, eval_batch, class_emb)
  return dict(train=train, evaluation=evaluation, state=state, frozen=frozen_a, params=params, batch=batch,
              eval_batch=eval_batch, task=task, mesh=mesh, model=model, labels=labels, shapes=shapes,
              trainable=trainable, frozen_shapes=frozen)


def summarize(config, num_classes: int, scheduler: str = 'memory_optimized') -> tuple[str, dict]:
  """(parameter table, the JSON result) of `plan`, plus the forward pass's FLOPs on the same shardings."""
  p = plan(config, num_classes, scheduler)
  train, evaluation, state, batch, mesh = p['train'], p['evaluation'], p['state'], p['batch'], p['mesh']
  model, loss_fn, kw = p['model'], losses.get_loss(config.loss.name), tasks.loss_kwargs(config)

  def forward(params, batch, task):
    return loss_fn(model, params, batch, task, rng=jax.random.PRNGKey(0), train=False, **kw)[0]

  fwd = jax.jit(forward).lower(p['params'], batch, p['task']).compile(p['options'])
  train_mem, eval_mem = programs.memory(train), programs.memory(evaluation)
  fwd_flops, step_flops = compilation.flops(fwd), compilation.flops(train)
  result = {
      'devices': jax.device_count(), 'processes': jax.process_count(), 'mesh': dict(mesh.shape),
      'per_device_bytes': max(train_mem['bytes'] or 0, eval_mem['bytes'] or 0) or None,
      'train_step_bytes': train_mem['bytes'], 'eval_step_bytes': eval_mem['bytes'],
      'train_step_memory': train_mem, 'eval_step_memory': eval_mem,
      'memory_source': f'XLA:CPU memory analysis ({train_mem["source"]}), {scheduler} scheduler',
      'trainable_params': partition.count(p['trainable']), 'frozen_params': partition.count(p['frozen_shapes']),
      'optimizer_state_floats': step.optimizer_floats(state['opt']),
      'forward_flops': fwd_flops, 'train_step_flops': step_flops,
      'train_step_over_forward': step_flops / fwd_flops if fwd_flops else None,
      'batch': config.batch_size, 'padded_batch': batch['mask'].shape[0],
      'eval_batch': config.eval.batch_size, 'padded_eval_batch': p['eval_batch']['mask'].shape[0],
      'accum_steps': config.optim.accum_steps, 'dtype': config.model.dtype, 'remat': config.model.remat,
      'sharding': config.sharding.preset, 'num_classes': num_classes, 'backend': jax.default_backend(),
  }
  return partition.table(p['shapes'], p['labels']), result


def num_classes_of(config) -> int:
  return len(classes.names(config.data.dataset))


def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program (importing it for its functions
  must not claim global flag names that another tool also uses)."""
  global _CONFIG, _SCHEDULER
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
  _SCHEDULER = flags.DEFINE_enum('scheduler', 'memory_optimized', list(programs.SCHEDULERS),
                                 "XLA:CPU's scheduler for the memory figures.")


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  if config is None:
    raise app.UsageError('--config is required, e.g. --config=configs/ssv2_fewshot.py')
  table, result = summarize(config, num_classes_of(config), _SCHEDULER.value)
  print(table)
  print(json.dumps(result))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
