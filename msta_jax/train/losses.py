"""Losses: classification against class-text embeddings, and MSTA's description consistency.

    logits = min(exp(logit_scale), 100) * cos(video_c, text_c)   (100 x cosine for ViCLIP and CLIP)
    L_CE   = cross-entropy(logits, label)
    L_CC   = mean_c [ 2 - cos(w_c, D_s^c) - cos(w_c, D_t^c) ]
    L      = L_CE + alpha * L_CC

w_c is the class prompt ("a video of {class}.") through the TRAINABLE text branch (with adapters);
D_s^c, D_t^c are the means of the L2-normalised embeddings of N spatial / N temporal descriptions
through the FROZEN pretrained text branch (no adapters), computed once per run (`consistency_targets`).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from msta_jax import compilation
from msta_jax import models


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
  x = x.astype(jnp.float32)  # Normalise in float32 whatever the compute dtype.
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


MAX_LOGIT_SCALE = 100.0  # CLIP's and ViCLIP's clamp (ViCLIP: temperature >= 0.01).


def logit_scale(log_scale: jax.Array) -> jax.Array:
  """exp(log_scale) clamped at 100: the value is unchanged below it (and so are its gradients)."""
  return jnp.minimum(jnp.exp(log_scale), MAX_LOGIT_SCALE)


def class_logits(video_emb: jax.Array, class_emb: jax.Array, log_scale: jax.Array) -> jax.Array:
  """[B, E] x [C, E] -> [B, C] scaled cosine similarities."""
  return logit_scale(log_scale) * l2_normalize(video_emb) @ l2_normalize(class_emb).T


def consistency(class_emb: jax.Array, spatial: jax.Array, temporal: jax.Array) -> jax.Array:
  """L_CC averaged over classes; inputs [C, E]."""
  w = l2_normalize(class_emb)
  cos_s = jnp.sum(w * l2_normalize(spatial), -1)
  cos_t = jnp.sum(w * l2_normalize(temporal), -1)
  return jnp.mean(2.0 - cos_s - cos_t)


def classification_loss(model, params: dict, batch: dict, task: dict, *, rng: jax.Array, train: bool,
                        consistency_weight: float = 1.0, label_smoothing: float = 0.0):
  """The MSTA objective (and plain CE when `consistency_weight` is 0 or no targets are given).

  batch: video [B, T, H, W, 3] float, label [B] int32, mask [B] float (0 for padding).
  task: class_ids [C, L] int32 prompt tokens; optional desc_spatial / desc_temporal [C, E].
  """
  rngs = {'dropout': rng}
  model_params = {k: v for k, v in params.items() if k != 'probe'}
  video = model.apply({'params': model_params}, batch['video'], train=train, method=model.encode_video, rngs=rngs)
  if 'probe' in params:  # Linear probe: learned class vectors instead of the text tower.
    classes = params['probe']['kernel'].T
  else:
    classes = model.apply({'params': model_params}, task['class_ids'], train=train, method=model.encode_text,
                          rngs=rngs)
  logits = class_logits(video, classes, params['logit_scale'])
  num_classes = logits.shape[-1]
  targets = optax.smooth_labels(jax.nn.one_hot(batch['label'], num_classes), label_smoothing)
  mask = batch.get('mask', jnp.ones(logits.shape[:1], jnp.float32))
  denom = jnp.maximum(mask.sum(), 1.0)
  ce = jnp.sum(optax.softmax_cross_entropy(logits, targets) * mask) / denom
  metrics = {'ce': ce, 'top1': jnp.sum((jnp.argmax(logits, -1) == batch['label']) * mask) / denom}
  loss = ce
  if consistency_weight and 'desc_spatial' in task:
    cc = consistency(classes, task['desc_spatial'], task['desc_temporal'])
    loss = loss + consistency_weight * cc
    metrics['cc'] = cc
  metrics['loss'] = loss
  return loss, metrics


def _soft_infonce(logits: jax.Array, same: jax.Array) -> jax.Array:
  """Cross-entropy against targets spread over every entry with the same text (duplicate captions)."""
  targets = same / same.sum(-1, keepdims=True)
  return jnp.mean(optax.softmax_cross_entropy(logits, targets))


def contrastive_loss(model, params: dict, batch: dict, task: dict, *, rng: jax.Array, train: bool,
                     frame_caption_weight: float = 0.0):
  """Symmetric video-text InfoNCE over the global batch (backbone pre-training, all weights train).

  Clips whose captions are identical count as positives of each other (soft targets, as ViCLIP's
  VTC loss does for duplicate ids). `frame_caption_weight` adds the same loss between ONE frame (the
  middle one) encoded alone and the caption, which teaches a frame-wise encoder too.
  """
  del task
  rngs = {'dropout': rng}
  ids = batch['caption_ids']
  text = l2_normalize(model.apply({'params': params}, ids, train=train, method=model.encode_text, rngs=rngs))
  video = l2_normalize(model.apply({'params': params}, batch['video'], train=train, method=model.encode_video,
                                   rngs=rngs))
  scale = logit_scale(params['logit_scale'])
  same = jnp.all(ids[:, None, :] == ids[None, :, :], axis=-1).astype(jnp.float32)
  logits = scale * video @ text.T
  loss = 0.5 * (_soft_infonce(logits, same) + _soft_infonce(logits.T, same))
  metrics = {'video_text': loss, 'top1': jnp.mean(same[jnp.arange(len(ids)), jnp.argmax(logits, -1)])}
  if frame_caption_weight:
    middle = batch['video'][:, batch['video'].shape[1] // 2]
    frame = l2_normalize(model.apply({'params': params}, middle, train=train, method=model.encode_image, rngs=rngs))
    f_logits = scale * frame @ text.T
    f_loss = 0.5 * (_soft_infonce(f_logits, same) + _soft_infonce(f_logits.T, same))
    loss = loss + frame_caption_weight * f_loss
    metrics['frame_text'] = f_loss
  metrics['loss'] = loss
  return loss, metrics


# Registry: config.loss.name -> loss function(model, params, batch, task, *, rng, train, **kwargs).
LOSSES: dict[str, Callable[..., tuple[jax.Array, dict[str, Any]]]] = {
    'classification': classification_loss,
    'contrastive': contrastive_loss,
}


def get_loss(name: str) -> Callable:
  if name not in LOSSES:
    raise ValueError(f'config.loss.name={name!r}; known: {sorted(LOSSES)}')
  return LOSSES[name]


def consistency_targets(backbone, params: dict, descriptions: dict[str, dict[str, list[str]]],
                        class_names: list[str], num: int, batch_size: int = 256) -> dict[str, np.ndarray]:
  """D_s, D_t [C, E]: mean normalised frozen-text embeddings of the first `num` descriptions per kind.

  `backbone` is the model WITHOUT adapters and `params` its parameters (no `msta` subtree).
  """
  tok = models.Tokenizer(backbone.cfg.text.context_length)
  encode = compilation.jit_forward(
      lambda p, ids: l2_normalize(backbone.apply({'params': p}, ids, method=backbone.encode_text)))
  out = {}
  for kind in ('spatial', 'temporal'):
    texts = []
    for c in class_names:
      if c not in descriptions:
        raise KeyError(f'no descriptions for class {c!r}; run `python -m msta_jax.tools.descriptions '
                       'validate` on the description file')
      have = descriptions[c].get(kind, [])
      if len(have) < num:
        raise ValueError(f'class {c!r} has {len(have)} {kind} descriptions, config.loss.num_descriptions={num}')
      texts.extend(have[:num])
    ids, _ = tok(texts)
    embs = np.concatenate([np.asarray(encode(params, ids[i:i + batch_size]))
                           for i in range(0, len(ids), batch_size)])
    out[f'desc_{kind}'] = embs.reshape(len(class_names), num, -1).mean(1)
  return out


# How a test video's views (clips x crops) are fused into one score per class: [B, V, C] -> [B, C]
# (config.eval.view_fusion; evaluate.make_eval_fn). 'softmax' is the MSTA authors' (ViFi-CLIP's).
VIEW_FUSIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'logits': lambda logits: logits.mean(axis=1),                            # [B, V, C] -> [B, C]
    'softmax': lambda logits: jax.nn.softmax(logits, axis=-1).mean(axis=1),
}
