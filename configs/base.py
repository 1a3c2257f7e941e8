"""Settings shared by every protocol; each protocol file changes only what differs.

Recipe from the MSTA authors' training logs (msta.md): ViCLIP-B/16, 8 frames at 224, adapters with
d=128 in blocks 8..12 of both towers, lambda=0.005, AdamW lr 1e-3, weight decay 1e-3, cosine schedule with
5 warm-up epochs, 50 epochs, global batch 32, fp32, consistency loss alpha=1 with N=2 descriptions.
"""
from __future__ import annotations

import ml_collections

BACKBONES = {
    # name -> (architecture, video mode). ViCLIP joint space-time; CLIP frames alone, averaged.
    'viclip': 'viclip_b16',
    'clip': 'clip_b16',
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  del arg
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Model.
  c.model = ml_collections.ConfigDict(dict(
      name='viclip_b16',   # Architecture from models.CONFIGS (used when `init` is empty).
      init='',             # Pretrained backbone: checkpoint path for models.load ('' = random init).
      num_frames=8,
      image_size=224,
      dtype='float32',     # Compute dtype ('bfloat16' for mixed precision; parameters stay float32).
      remat=False,         # Rematerialise transformer blocks in the backward pass.
      drop_path=0.0,       # Stochastic depth of the vision tower (frozen fine-tuning: off).
  ))

  # Adapters (models/adapters.py documents every field). Set `msta.enabled=False` for no adapters.
  c.msta = ml_collections.ConfigDict(dict(
      enabled=True, first_block=8, last_block=12, bottleneck=128, scale=0.005, temporal_kernel=3,
      temporal_conv=True, conv_input='up', cls_mode='patch_mean', conv_init='diff', up_init='zeros',
      video=True, text=True, shared=True))

  # What trains: ordered (regex, 'trainable' | 'frozen'), first full match on '/' paths wins.
  c.freeze = (('msta/.*', 'trainable'), ('.*', 'frozen'))

  # Loss.
  c.loss = ml_collections.ConfigDict(dict(
      name='classification',
      template='a video of {}.',
      consistency_weight=1.0,   # alpha; 0 disables the description consistency loss.
      num_descriptions=2,       # N spatial and N temporal descriptions per class.
      label_smoothing=0.0,
  ))

  # Optimiser.
  c.optim = ml_collections.ConfigDict(dict(
      lr=1e-3, weight_decay=1e-3, b1=0.9, b2=0.999, eps=1e-8, schedule='cosine', warmup_epochs=5.0,
      epochs=50, grad_clip=0.0))
  c.batch_size = 32  # Global batch, split over the 'data' mesh axis.

  # Data.
  c.data = ml_collections.ConfigDict(dict(
      dataset='ssv2',      # Class list and descriptions: msta_jax/data/assets/*/<dataset>.json.
  ))
  return c
