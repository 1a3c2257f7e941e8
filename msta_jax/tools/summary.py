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
from absl import app
from ml_collections import config_flags

from msta_jax import compilation
from msta_jax import models
from msta_jax.data import classes
from msta_jax.train import from_config
from msta_jax.train import losses
from msta_jax.train import partition
from msta_jax.train import step
from msta_jax.train import tasks



def summarize(config, num_classes: int) -> tuple[str, dict]:
  model = from_config.build_model(config)
  shapes = models.param_shapes(model)
  labels = partition.param_labels(shapes, config.freeze)
  trainable, frozen = partition.split(shapes, labels)
  tx = from_config.build_optimizer(config, labels, steps_per_epoch=100)
  state = jax.eval_shape(lambda t, f: step.init_state(t, f, tx, jax.random.PRNGKey(0)), trainable, frozen)
  batch = step.abstract_batch(model.cfg, config.batch_size, captions=config.loss.name == 'contrastive')
  task = step.abstract_task(model.cfg, num_classes, descriptions=bool(config.loss.consistency_weight))
  loss_fn = losses.get_loss(config.loss.name)
  kw = tasks.loss_kwargs(config)

  def forward(params, batch, task):
    return loss_fn(model, params, batch, task, rng=jax.random.PRNGKey(0), train=False, **kw)[0]

  fwd = jax.jit(forward).lower(shapes, batch, task).compile()
  train = jax.jit(step.make_train_step(model=model, tx=tx, labels=labels, loss_fn=loss_fn, loss_kwargs=kw),
                  donate_argnums=0).lower(state, frozen, batch, task).compile()
  peak, source = compilation.memory_bytes(train)
  fwd_flops, step_flops = compilation.flops(fwd), compilation.flops(train)
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
