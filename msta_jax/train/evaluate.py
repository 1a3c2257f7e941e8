"""Evaluation: every video scored exactly once, views averaged per video, metrics from saved logits.

A video's scores fuse its views (temporal clips x spatial crops) by `config.eval.view_fusion`: 'logits'
(ours) is the mean over views of the scaled cosine similarities with each class prompt; 'softmax' (the
MSTA authors' code base, ViFi-CLIP `main.py` validate: per-view softmax, summed) is the mean over views
of the class probabilities. Either is saved as `logits` in DIR/logits/<split>.npz. Padding entries (`index` -1)
are dropped, and the per-video results are checked to hold each index exactly once, so no video is
dropped or double counted however the split is divided between processes.
"""
from __future__ import annotations

import io
import os
import zipfile
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from msta_jax import compilation
from msta_jax import files
from msta_jax.data import normalize, pipeline
from msta_jax.train import batching
from msta_jax.train import losses


def make_eval_fn(model, view_fusion: str = 'logits') -> Callable:
  """(params, batch, class_emb [C, E]) -> batch without 'video', plus views fused into 'logits' [B, C].

  'video' is uint8 views, normalised here with the model's mean/std (normalize.model_input, rule 'test'):
  evaluation and prediction share this function, so they share the normalisation too.

  Returning labels and indices from the same jitted call keeps them aligned with the logits whatever
  the order in which processes' rows form the global batch.
  """
  if view_fusion not in losses.VIEW_FUSIONS:
    raise ValueError(f'config.eval.view_fusion={view_fusion!r}; allowed: {sorted(losses.VIEW_FUSIONS)}')
  fuse = losses.VIEW_FUSIONS[view_fusion]

  def fn(params, batch, class_emb):
    video = normalize.model_input(batch['video'], model.cfg.mean, model.cfg.std, 'test')
    b, v = video.shape[:2]
    model_params = {k: x for k, x in params.items() if k != 'probe'}
    emb = model.apply({'params': model_params}, video.reshape((b * v,) + video.shape[2:]), method=model.encode_video)
    logits = fuse(losses.class_logits(emb, class_emb, params['logit_scale']).reshape(b, v, -1))
    return dict({k: x for k, x in batch.items() if k != 'video'}, logits=logits)
  return fn


def make_text_fn(model) -> Callable:
  return lambda params, ids: model.apply({'params': {k: x for k, x in params.items() if k != 'probe'}}, ids,
                                         method=model.encode_text)


def collect(scored: Iterable[dict[str, Any]], num_examples: int, split: str) -> dict[str, np.ndarray]:
  """Concatenates scored global batches, drops padding (`index` -1), orders by index, and checks
  that every video of the split was scored exactly once."""
  parts: dict[str, list[np.ndarray]] = {}
  for out in scored:
    real = np.asarray(out['index']) >= 0
    for k, v in out.items():
      if k != 'mask':
        parts.setdefault(k, []).append(np.asarray(v)[real])
  out = {k: np.concatenate(v) for k, v in parts.items()}
  order = np.argsort(out['index'], kind='stable')
  out = {k: v[order] for k, v in out.items()}
  if not np.array_equal(out['index'], np.arange(num_examples)):
    raise RuntimeError(f'evaluation of {split!r} scored {len(out["index"])} entries for {num_examples} videos '
                       f'({len(np.unique(out["index"]))} distinct): every video must be scored exactly once')
  return out


def topk(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
  k = min(k, logits.shape[1])
  top = np.argsort(-logits, axis=1, kind='stable')[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=1)) * 100)


def factor_metrics(logits: np.ndarray, labels: np.ndarray, factors: list[dict[str, Any]]) -> dict[str, float]:
  """Known-answer metrics for datasets with per-class factors (the synthetic set), in %.

  temporal_top1: on videos whose class has a time-reversed twin in the list, how often the true class
  scores above the twin (ties count half); chance is 50; temporal_videos: how many videos that
  counts (each a clip or its exact reversal, so they come in pairs). appearance_top1: how often the predicted
  class has the true shape and colour.
  """
  twin = np.array([f.get('twin', -1) for f in factors])
  out: dict[str, float] = {}
  has = twin[labels] >= 0
  if has.any():
    rows = np.nonzero(has)[0]
    true_s, twin_s = logits[rows, labels[rows]], logits[rows, twin[labels[rows]]]
    out['temporal_top1'] = float(np.mean((true_s > twin_s) + 0.5 * (true_s == twin_s)) * 100)
    out['temporal_chance'] = 50.0
    out['temporal_videos'] = int(len(rows))
  if factors and all('shape' in f and 'colour' in f for f in factors):
    look = np.array([(f['shape'], f['colour']) for f in factors])
    pred = np.argmax(logits, axis=1)
    out['appearance_top1'] = float(np.mean(np.all(look[pred] == look[labels], axis=1)) * 100)
  return out


def metrics(result: dict[str, np.ndarray], factors: list[dict[str, Any]] | None = None) -> dict[str, float]:
  out = {'top1': topk(result['logits'], result['label'], 1), 'top5': topk(result['logits'], result['label'], 5),
         'num_videos': int(len(result['label']))}
  if 'repeated_clips' in result:  # Videos whose temporal clips were not all distinct (too few stored frames).
    out['videos_with_repeated_clips'] = int(np.sum(result['repeated_clips']))
  if factors:
    out.update(factor_metrics(result['logits'], result['label'], factors))
  return out


def harmonic_mean(a: float | None, b: float | None) -> float | None:
  """HM of base and novel accuracy; None when either does not exist (a split a method cannot score)."""
  if a is None or b is None:
    return None
  return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def save_logits(path: str, result: dict[str, np.ndarray], classes: list[str]) -> None:
  """`DIR/logits/<split>.npz`: per-video logits, labels, indices and class names; any metric can be
  recomputed from it. Written atomically, with fixed zip timestamps (np.savez stamps the clock), so
  equal results give byte-identical files."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z:
    for key, arr in dict(classes=np.asarray(classes), **result).items():
      with z.open(zipfile.ZipInfo(f'{key}.npy', date_time=(1980, 1, 1, 0, 0, 0)), 'w', force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
  files.write_atomic(path, buf.getvalue())


def in_list_order(result: dict[str, np.ndarray], src) -> dict[str, np.ndarray]:
  """`result` with `video_id` (pipeline.video_ids), rows in the order of the split's list where the
  dataset records it (metrics do not depend on the order; generated data keeps storage order)."""
  list_index = result.get('list_index')
  out = dict(result, video_id=pipeline.video_ids(src, result['index'], list_index))
  if list_index is None:
    return out
  order = np.argsort(list_index, kind='stable')
  return {k: v[order] for k, v in out.items()}


def class_embeddings(text_fn: Callable, params, ids: np.ndarray, batch: int = 256) -> jax.Array:
  return jnp.concatenate([text_fn(params, ids[i:i + batch]) for i in range(0, len(ids), batch)])


class Evaluator:
  """Scores splits with the current parameters: class embeddings once per split, then all videos."""

  def __init__(self, config, model, mesh, tokenizer, clip, process_index: int, process_count: int):
    self.config, self.mesh, self.tok, self.clip = config, mesh, tokenizer, clip
    self.pid, self.pcount = process_index, process_count
    repl = NamedSharding(mesh, P())
    self.data_sharding = NamedSharding(mesh, P('data'))
    self.score = compilation.jit_forward(make_eval_fn(model, config.eval.get('view_fusion', 'logits')),
                                         out_shardings=repl)
    self.text = compilation.jit_forward(make_text_fn(model), out_shardings=repl)
    self.linear_probe_classes: list[str] | None = None  # Classes of a linear probe's weight vectors.

  def run(self, params, src, *, views: tuple[int, int], save_to: str | None = None,
          name: str | None = None) -> dict[str, Any]:
    if 'probe' in params:
      if src.classes != self.linear_probe_classes:
        return {'top1': None, 'top5': None, 'num_videos': len(src), 'views': list(views),
                'note': 'a linear probe has no weights for the classes of this split'}
      class_emb = params['probe']['kernel'].T
    else:
      ids, _ = self.tok([self.config.loss.template.format(c) for c in src.classes])
      class_emb = class_embeddings(self.text, params, ids)
    global_batch = batching.eval_size(self.config, self.mesh, self.pcount)  # The recipe's, padded to the mesh.
    batches = pipeline.eval_batches(src, global_batch=global_batch, clip=self.clip, clips=views[0],
                                    crops=views[1], resize=self.config.eval.resize, process_index=self.pid,
                                    process_count=self.pcount, num_threads=self.config.data.num_threads,
                                    sampler=self.config.eval.get('test_sampler', 'fixed'), seed=self.config.seed)

    scored = []  # Results stay on the device until the split is done: no host sync per batch.
    for local in batches:
      batch = {k: jax.make_array_from_process_local_data(self.data_sharding, np.asarray(v))
               for k, v in local.items()}
      scored.append(self.score(params, batch, class_emb))
    result = collect(jax.device_get(scored), len(src), src.split)
    factors = src.metadata.get('factors')
    out = metrics(result, factors)
    out['views'] = list(views)
    if save_to is not None and self.pid == 0:
      save_logits(os.path.join(save_to, 'logits', f'{name or src.split}.npz'), in_list_order(result, src),
                  src.classes)
    return out
