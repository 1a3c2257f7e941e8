"""What a run writes besides checkpoints: metrics (clu writers), adapters.safetensors, results.json."""
from __future__ import annotations

import json
import os
from typing import Any

from absl import logging


def metric_writer(workdir: str, process_index: int):
  """Console + TensorBoard on process 0, console logging elsewhere."""
  from clu import metric_writers
  return metric_writers.create_default_writer(workdir, just_logging=process_index > 0, asynchronous=False)


def progress(total_steps: int, writer):
  """A callable(step) reporting steps/s and ETA every ~30 s."""
  from clu import periodic_actions
  report = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer, every_secs=30)
  return lambda step: report(step)


def write_outputs(workdir: str, config, model, trainable: dict, results: dict[str, Any]) -> None:
  from msta_jax.models import checkpoints
  adapters_meta = {'method': config.method, 'model': model.cfg.to_dict(),
                   'msta': dict(config.msta) if model.msta is not None else None,
                   'lora': dict(config.lora) if model.lora is not None else None,
                   'adaptformer': dict(config.adaptformer) if model.adaptformer is not None else None,
                   'freeze': [list(r) for r in config.freeze]}
  path = os.path.join(workdir, 'adapters.safetensors')
  checkpoints.write_adapters(path, trainable, adapters_meta)
  results = dict(results, adapters=path)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  logging.info('results: %s', json.dumps(results.get('test', {}), sort_keys=True))
