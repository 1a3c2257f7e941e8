"""What a run writes besides checkpoints: metrics (clu writers), adapters.safetensors, results.json."""
from __future__ import annotations

import json
import os
from typing import Any

from absl import logging

from msta_jax import files
from msta_jax import models
from msta_jax.models import checkpoints
from msta_jax.train import faults


def metric_writer(workdir: str, process_index: int):
  """Console + TensorBoard on process 0, console logging elsewhere."""
  from clu import metric_writers  # Lazy: clu imports TensorFlow, which the trainer's imports leave out.
  return metric_writers.create_default_writer(workdir, just_logging=process_index > 0, asynchronous=False)


def progress(total_steps: int, writer):
  """A callable(step) reporting steps/s and ETA every ~30 s."""
  from clu import periodic_actions  # Lazy: clu imports TensorFlow.
  report = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer, every_secs=30)
  return lambda step: report(step)


def adapters_metadata(config, model) -> dict[str, Any]:
  """What adapters.safetensors records beside the tensors: the method, the architecture, each adapter
  family's config as `to_dict()` (None when the model has none; models.adapter_configs reads it back)
  and the freezing rules."""
  meta = {'method': config.method, 'model': model.cfg.to_dict(), 'freeze': [list(r) for r in config.freeze]}
  for name in models.ADAPTERS:
    cfg = getattr(model, name)
    meta[name] = None if cfg is None else cfg.to_dict()
  return meta


def backbone_only(params: dict, like: dict) -> dict:
  """The leaves of `params` at the paths `like` (the backbone's own parameters) has: adapter branches
  (`msta/...`, LoRA, AdaptFormer) and a linear probe's weights go, trained backbone weights stay."""
  return {k: backbone_only(v, like[k]) if isinstance(v, dict) else v for k, v in params.items() if k in like}


def export_backbone(path: str, backbone, params: dict, backbone_params: dict) -> None:
  """DIR/backbone/ (config.json + model.safetensors) that `models.load` and `predict --backbone` read,
  with or without the run's adapters.safetensors."""
  models.save(path, backbone, backbone_only(params, backbone_params))


def write_outputs(workdir: str, config, model, trainable: dict, results: dict[str, Any]) -> None:
  """DIR/adapters.safetensors and DIR/results.json (written last and atomically: a run with a
  results.json is finished)."""
  path = os.path.join(workdir, 'adapters.safetensors')
  checkpoints.write_adapters(path, trainable, adapters_metadata(config, model))
  faults.hit('during_export')
  results = dict(results, adapters=path)
  files.write_json(os.path.join(workdir, 'results.json'), results, indent=1, sort_keys=True)
  logging.info('results: %s', json.dumps(results.get('test', {}), sort_keys=True))
