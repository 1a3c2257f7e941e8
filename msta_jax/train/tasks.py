"""Per-run task inputs: class prompts, description targets, caption tokens, loss arguments.

Everything here is computed once per run from the config and the data's metadata, then handed to the
jitted step as arrays; nothing in it runs per step.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from msta_jax import compilation
from msta_jax.data import authors_descriptions
from msta_jax.data import classes
from msta_jax.data import descriptions as descriptions_lib
from msta_jax.train import losses


def class_task(tokenizer, template: str, classes: list[str]) -> dict[str, np.ndarray]:
  ids, _ = tokenizer([template.format(c) for c in classes])
  return {'class_ids': ids}


def descriptions(config, src) -> dict[str, dict[str, list[str]]]:
  """Description texts for the training classes: the dataset's own metadata (synthetic set), a shipped
  set (config.data.descriptions = dataset name), a JSON file path, or the authors' index-keyed pair
  ('authors:SPATIAL.json,TEMPORAL.json', indices mapped to the class list of config.data.dataset)."""
  source = config.data.descriptions
  if authors_descriptions.is_spec(source):
    return authors_descriptions.load(source, classes.names(config.data.dataset))
  if source == 'metadata':
    found = src.dataset_metadata.get('descriptions')
    if not found:
      raise ValueError(f'{src.path}: config.data.descriptions="metadata" but the dataset carries none')
    return found
  return descriptions_lib.load(source)


def caption_fn(tokenizer) -> Callable[[str], np.ndarray]:
  """caption -> int32 [L] token ids, for contrastive pre-training batches (cached: captions repeat)."""
  @functools.lru_cache(maxsize=65536)
  def ids(text: str) -> tuple[int, ...]:
    return tuple(tokenizer([text])[0][0].tolist())
  return lambda text: np.asarray(ids(text), np.int32)


def loss_kwargs(config) -> dict[str, Any]:
  if config.loss.name == 'classification':
    return {'consistency_weight': config.loss.consistency_weight, 'label_smoothing': config.loss.label_smoothing}
  return {'frame_caption_weight': config.loss.frame_caption_weight}


def split_record(src) -> dict[str, Any]:
  """Which data a run trained on, for results.json (split set, list, class list)."""
  if src is None:
    return {}
  meta = src.dataset_metadata
  return {'dataset': src.path, 'train_split': src.split, 'class_list': src.metadata.get('class_list'),
          'source': src.metadata.get('source'), 'split_set': meta.get('split_set', meta.get('generator'))}


def linear_probe_init(backbone, params: dict, tokenizer, template: str, classes: list[str]) -> dict[str, np.ndarray]:
  """Linear-probe weights [E, C]: the normalised class-prompt embeddings (step 0 = zero-shot)."""
  ids, _ = tokenizer([template.format(c) for c in classes])
  emb = compilation.jit_forward(lambda p, x: backbone.apply({'params': p}, x, method=backbone.encode_text))(params, ids)
  return {'kernel': np.asarray(losses.l2_normalize(emb)).T}
