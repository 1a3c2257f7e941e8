"""The learning rate at the start of every epoch of a config's schedule, without data or weights.

    python -m msta_jax.tools.schedule --config=configs/hmdb_fewshot.py:shots=16,recipe=authors --train_examples=816

Steps per epoch are floor(training videos / global batch), as the trainer's loader (and the authors'
loader, which drops the rest) counts them. Prints a table (epoch, first step, lr), then, last, one JSON
line {"steps_per_epoch": N, "lr": [f(e x N) for e = 0, 1, ...]}: f is the schedule of
msta_jax/train/schedules.py before any after-step shift, the value the authors' logs print at the first
step of each epoch (HMDB K=16: 816 videos / 32 = 25 steps; epochs 1, 5, 49: 2.0e-4, 9.75773e-4, 1.0977e-5).
"""
from __future__ import annotations

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from msta_jax.train import schedules


def epoch_lrs(config, train_examples: int) -> dict:
  """{'steps_per_epoch': N, 'lr': [...]} of `config` with `train_examples` training videos."""
  if train_examples < config.batch_size:
    raise ValueError(f'--train_examples={train_examples} is fewer than one global batch ({config.batch_size}): '
                     'the loader would refuse it')
  n = train_examples // config.batch_size
  return {'steps_per_epoch': n, 'lr': schedules.epoch_starts(config.optim, n, config.get('total_steps') or 0)}


def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program."""
  global _CONFIG, _TRAIN_EXAMPLES
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
  _TRAIN_EXAMPLES = flags.DEFINE_integer('train_examples', None, 'Videos in the training split.')


def main(argv: list[str]) -> None:
  del argv
  if _CONFIG.value is None or _TRAIN_EXAMPLES.value is None:
    raise app.UsageError('--config and --train_examples are required, e.g. '
                         '--config=configs/hmdb_fewshot.py:recipe=authors --train_examples=816')
  config = _CONFIG.value
  out = epoch_lrs(config, _TRAIN_EXAMPLES.value)
  print(f'recipe {config.get("recipe", "?")}, schedule {config.optim.schedule}, {out["steps_per_epoch"]} steps '
        f'per epoch, lr_after_step={config.optim.get("lr_after_step", False)}')
  print('epoch  first step  lr')
  for e, lr in enumerate(out['lr']):
    print(f'{e:5d}  {e * out["steps_per_epoch"]:10d}  {lr:.9e}')
  print(json.dumps(out))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
