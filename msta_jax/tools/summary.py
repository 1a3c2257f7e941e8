"""What a config builds and what one step costs, without weights or data.

    python -m msta_jax.tools.summary --config=configs/ssv2_fewshot.py [--config.msta.bottleneck=256 ...]

Builds the model abstractly (jax.eval_shape), prints trainable / frozen parameters per module, then
compiles (never runs) the forward pass and the train step at the config's batch and reads XLA's cost
and memory analyses. The LAST line is one JSON object: trainable_params, frozen_params,
optimizer_state_floats, forward_flops, train_step_flops, train_step_over_forward, peak_memory_bytes
(with its source), batch.
"""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import config_flags

from msta_jax import models
from msta_jax.train import builders, losses, partition, step



def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get('flops', 0.0))


def _memory(compiled) -> tuple[int | None, str]:
  """Bytes the compiled program holds at once: arguments + outputs + temporaries - donated aliases.

  Not `peak_memory_in_bytes`: XLA:CPU reports arguments + outputs there and leaves the temporaries
  (activations, workspace) out, so it read below the temporaries alone for a B/16 train step.
  """
  mem = compiled.memory_analysis()
  if mem is None:
    return None, 'unavailable'
  total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes
  return int(total), 'arguments+outputs+temporaries-aliased'


def abstract_inputs(config, model: models.CLIP, num_classes: int) -> tuple[dict, dict]:
  """ShapeDtypeStructs of one global batch and of the per-run task inputs."""
  sds = jax.ShapeDtypeStruct
  v = model.cfg.vision
  b = config.batch_size
  batch = {'video': sds((b, v.num_frames, v.image_size, v.image_size, 3), jnp.float32),
           'label': sds((b,), jnp.int32), 'mask': sds((b,), jnp.float32)}
  task = {'class_ids': sds((num_classes, model.cfg.text.context_length), jnp.int32)}
  if config.loss.consistency_weight:
    task['desc_spatial'] = task['desc_temporal'] = sds((num_classes, model.cfg.embed_dim), jnp.float32)
  return batch, task


def summarize(config, num_classes: int) -> tuple[str, dict]:
  model = builders.build_model(config)
  shapes = models.param_shapes(model)
  labels = partition.param_labels(shapes, config.freeze)
  trainable, frozen = partition.split(shapes, labels)
  tx = builders.build_optimizer(config, labels, steps_per_epoch=100)
  state = jax.eval_shape(lambda t, f: step.init_state(t, f, tx, jax.random.PRNGKey(0)), trainable, frozen)
  batch, task = abstract_inputs(config, model, num_classes)
  loss_fn = losses.get_loss(config.loss.name)
  kw = dict(consistency_weight=config.loss.consistency_weight, label_smoothing=config.loss.label_smoothing)

  def forward(params, batch, task):
    return loss_fn(model, params, batch, task, rng=jax.random.PRNGKey(0), train=False, **kw)[0]

  fwd = jax.jit(forward).lower(shapes, batch, task).compile()
  train = jax.jit(step.make_train_step(model=model, tx=tx, labels=labels, loss_fn=loss_fn, loss_kwargs=kw),
                  donate_argnums=0).lower(state, frozen, batch, task).compile()
  peak, source = _memory(train)
  fwd_flops, step_flops = _flops(fwd), _flops(train)
  result = {
      'trainable_params': partition.count(trainable), 'frozen_params': partition.count(frozen),
      'optimizer_state_floats': step.optimizer_floats(state['opt']),
      'forward_flops': fwd_flops, 'train_step_flops': step_flops,
      'train_step_over_forward': step_flops / fwd_flops if fwd_flops else None,
      'peak_memory_bytes': peak, 'peak_memory_source': source,
      'batch': config.batch_size, 'num_classes': num_classes, 'backend': jax.default_backend(),
  }
  return partition.table(shapes, labels), result


def num_classes_of(config) -> int:
  from msta_jax.data import classes
  return len(classes.names(config.data.dataset))


def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program (importing it for its functions
  must not claim global flag names that another tool also uses)."""
  global _CONFIG
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  if config is None:
    raise app.UsageError('--config is required, e.g. --config=configs/ssv2_fewshot.py')
  table, result = summarize(config, num_classes_of(config))
  print(table)
  print(json.dumps(result))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
