"""Open-vocabulary prediction on video files, with any backbone models.load takes, with or without adapters.

    python -m msta_jax.predict --backbone=PATH --video=a.mp4 --video=b.webm --labels="archery,juggling" \
        [--adapters=DIR/adapters.safetensors] [--top_k=5] [--json] [--verbose]

--backbone takes any checkpoint models.load reads, a run's exported `backbone/` folder
(--config.export_backbone=True), or `random` / `random:MODEL` (a seeded random init, as
--config.model.init=random and run_protocol --backbone=random; MODEL defaults to viclip_b16).

    from msta_jax.predict import Predictor
    p = Predictor('PATH', adapters=None)
    p.predict(['a.mp4'], ['archery', 'juggling'], top_k=2)   # [{'path', 'ok', 'error', 'top': [...]}]

Videos are decoded by the same decoder that builds datasets (PyAV, short side 256, at most 64 frames
spread over the clip) and scored by the same views function and the same jitted scoring function as
evaluation (msta_jax/data/transforms.clip_views, msta_jax/train/evaluate.make_eval_fn, which normalises the
uint8 views on the device): fed the same decoded frames, prediction and evaluation give identical scores. An unreadable file gets its own error
and the other files are still scored.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import jax
import numpy as np
from absl import app, flags
from PIL import Image

from msta_jax import compilation, models
from msta_jax.data import decode, transforms
from msta_jax.tools import cli
from msta_jax.train import evaluate


RANDOM = 'random'


def load_backbone(backbone: str, adapters: str | None = None):
  """(model, params) of a checkpoint (with the adapters), or of `random[:MODEL]`: a random init, seed 0."""
  name, sep, arch = backbone.partition(':')
  if name != RANDOM or (sep and not arch):
    return models.load(backbone, adapters=adapters)
  if adapters:
    raise ValueError('--adapters needs the backbone its run trained on, not --backbone=random')
  arch = arch or 'viclip_b16'
  if arch not in models.CONFIGS:
    raise ValueError(f'--backbone={backbone}: no model {arch!r}; known: {sorted(models.CONFIGS)}')
  model = models.get_model(arch)
  return model, jax.device_get(jax.jit(lambda r: models.init_params(model, r))(jax.random.PRNGKey(0)))


class Predictor:
  """Loads a model once; scores videos against any label set."""

  def __init__(self, backbone: str, adapters: str | None = None, *, clips: int = 1, crops: int = 1,
               resize: str = 'short_side', template: str = 'a video of {}.'):
    self.model, self.params = load_backbone(backbone, adapters)
    cfg = self.model.cfg
    self.num_frames, self.size = cfg.vision.num_frames, cfg.vision.image_size
    self.mean, self.std = cfg.mean, cfg.std  # Applied on the device, inside the scoring function.
    self.clips, self.crops, self.resize, self.template = clips, crops, resize, template
    self.tokenizer = models.Tokenizer(cfg.text.context_length)
    self._score = compilation.jit_forward(evaluate.make_eval_fn(self.model))
    self._text = compilation.jit_forward(evaluate.make_text_fn(self.model))

  def class_embeddings(self, labels: list[str]) -> jax.Array:
    ids, _ = self.tokenizer([self.template.format(label) for label in labels])
    return evaluate.class_embeddings(self._text, self.params, ids)

  def views(self, frames: np.ndarray) -> np.ndarray:
    """Decoded frames uint8 [N, H, W, 3] -> the evaluation views uint8 [V, T, S, S, 3]."""
    return transforms.clip_views(lambda idx: [Image.fromarray(frames[i]) for i in idx], len(frames),
                                 self.num_frames, self.size, self.clips, self.crops, self.resize)

  def logits(self, views: np.ndarray, class_emb: jax.Array) -> np.ndarray:
    """View-averaged logits [C] of one video's views."""
    return np.asarray(self._score(self.params, {'video': views[None]}, class_emb)['logits'][0])

  def predict(self, paths: list[str], labels: list[str], top_k: int = 5) -> list[dict[str, Any]]:
    if not labels:
      raise ValueError('no labels given: pass --labels="a,b,c" or --labels_file=FILE')
    class_emb = self.class_embeddings(labels)
    out = []
    for path in paths:
      decoded = decode.decode_for_storage(path)
      if decoded.frames is None:
        v = decoded.verdict
        out.append({'path': path, 'ok': False, 'error': f'{v.status}: {v.reason} {v.detail}'.strip(), 'top': []})
        continue
      logits = self.logits(self.views(decoded.frames), class_emb)
      probs = np.exp(logits - logits.max())
      probs /= probs.sum()
      order = np.argsort(-probs, kind='stable')[:top_k]
      out.append({'path': path, 'ok': True, 'error': None,
                  'top': [{'label': labels[i], 'prob': float(probs[i])} for i in order]})
    return out




def _labels() -> list[str]:
  if _LABELS_FILE.value:
    with open(_LABELS_FILE.value, encoding='utf-8') as f:
      return [line.strip() for line in f if line.strip()]
  return [s.strip() for s in (_LABELS.value or '').split(',') if s.strip()]


def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program (importing it for its functions
  must not claim global flag names that another tool also uses)."""
  global _BACKBONE, _ADAPTERS, _VIDEO, _LABELS, _LABELS_FILE, _TOP_K, _JSON, _CLIPS, _CROPS, _TEMPLATE, _VERBOSE
  _BACKBONE = flags.DEFINE_string('backbone', None, 'Backbone checkpoint (any format models.load takes, e.g. a '
                                  "run's backbone/ export), or random[:MODEL].")
  _VERBOSE = flags.DEFINE_bool('verbose', False, 'Full tracebacks for errors (default: one line).')
  _ADAPTERS = flags.DEFINE_string('adapters', None, 'adapters.safetensors written by a training run.')
  _VIDEO = flags.DEFINE_multi_string('video', [], 'Video file; repeat for several.')
  _LABELS = flags.DEFINE_string('labels', None, 'Comma-separated class names.')
  _LABELS_FILE = flags.DEFINE_string('labels_file', None, 'File with one class name per line.')
  _TOP_K = flags.DEFINE_integer('top_k', 5, 'How many labels to print per video.')
  _JSON = flags.DEFINE_bool('json', False, 'Print one JSON object per video instead of a table.')
  _CLIPS = flags.DEFINE_integer('clips', 1, 'Temporal clips per video (views are averaged).')
  _CROPS = flags.DEFINE_integer('crops', 1, 'Spatial crops per clip (1 or 3).')
  _TEMPLATE = flags.DEFINE_string('template', 'a video of {}.', 'Prompt template for each label.')


def main(argv: list[str]) -> None:
  del argv
  if not _BACKBONE.value or not _VIDEO.value:
    raise app.UsageError('--backbone and at least one --video are required')
  try:
    predictor = Predictor(_BACKBONE.value, _ADAPTERS.value, clips=_CLIPS.value, crops=_CROPS.value,
                          template=_TEMPLATE.value)
    results = predictor.predict(_VIDEO.value, _labels(), _TOP_K.value)
  except (ValueError, OSError) as e:  # The user's files or flags (CheckpointError is a ValueError): one line.
    if _VERBOSE.value:
      raise
    sys.exit(f'error: {e} (--verbose for the traceback)')
  for r in results:
    if _JSON.value:
      print(json.dumps(r))
    elif r['ok']:
      print(r['path'])
      for t in r['top']:
        print(f"  {t['prob']:.4f}  {t['label']}")
    else:
      print(f"{r['path']}: ERROR {r['error']}")
  if not all(r['ok'] for r in results):
    sys.exit(1)


if __name__ == '__main__':
  cli.quiet_tensorflow(sys.argv, onednn_banner=True)  # No TensorFlow computation in prediction.
  _define_flags()
  app.run(main)
