"""Settings shared by every protocol; each protocol file changes only what differs.

Recipe from the MSTA authors' training logs (msta.md): ViCLIP-B/16, 8 frames at 224, adapters with
d=128 in blocks 8..12 of both towers, lambda=0.005, AdamW lr 1e-3, weight decay 1e-3, cosine schedule with
5 warm-up epochs, 50 epochs, global batch 32, fp32, consistency loss alpha=1 with N=2 descriptions,
evaluation every 5 epochs.
"""
from __future__ import annotations

import ml_collections

BACKBONES = {'viclip': 'viclip_b16', 'clip': 'clip_b16'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  del arg
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.method = 'msta'          # Recorded in results; configs/methods.py sets what each method changes.

  # Model.
  c.model = ml_collections.ConfigDict(dict(
      name='viclip_b16',     # Architecture from models.CONFIGS (used when `init` is empty).
      init='',               # Pretrained backbone for models.load ('' = seeded random init).
      video_mode='',         # '' = the backbone's own; 'frame_average' or 'joint' to override.
      num_frames=8,
      image_size=224,
      dtype='float32',       # Compute dtype ('bfloat16': mixed precision; parameters stay float32).
      remat=False,           # Rematerialise transformer blocks in the backward pass.
      drop_path=0.0,         # Vision stochastic depth (off for frozen fine-tuning).
  ))

  # Adapters (models/adapters.py documents every field); `enabled=False` means no adapters.
  c.msta = ml_collections.ConfigDict(dict(
      enabled=True, first_block=8, last_block=12, bottleneck=128, scale=0.005, temporal_kernel=3,
      temporal_conv=True, conv_input='up', cls_mode='patch_mean', conv_init='diff', up_init='zeros',
      video=True, text=True, shared=True))

  # Other parameter-efficient methods (models/peft.py); methods 'lora' / 'adaptformer' enable them.
  c.lora = ml_collections.ConfigDict(dict(enabled=False, rank=8, alpha=16.0, first_block=1, last_block=12,
                                          targets=('q', 'v')))
  c.adaptformer = ml_collections.ConfigDict(dict(enabled=False, bottleneck=64, scale=0.1, first_block=1,
                                                 last_block=12))

  # What trains: ordered (regex, 'trainable' | 'frozen'); the first full match on '/' paths wins.
  c.freeze = (('msta/.*', 'trainable'), ('.*', 'frozen'))

  # Loss.
  c.loss = ml_collections.ConfigDict(dict(
      name='classification',      # 'classification' (fine-tuning) or 'contrastive' (pre-training).
      template='a video of {}.',
      consistency_weight=1.0,     # alpha; 0 disables the description consistency loss.
      num_descriptions=2,         # N spatial and N temporal descriptions per class.
      label_smoothing=0.0,
      frame_caption_weight=0.0,   # Contrastive only: single-frame caption loss weight.
  ))

  # Optimiser and schedule.
  c.optim = ml_collections.ConfigDict(dict(
      lr=1e-3, weight_decay=1e-3, b1=0.9, b2=0.999, eps=1e-8, schedule='cosine', warmup_epochs=5.0,
      epochs=50.0, grad_clip=0.0,
      accum_steps=1))              # Micro-batches per step (memory); classification loss only.
  c.total_steps = 0                # 0: epochs x steps per epoch.
  c.batch_size = 32                # Global batch, split over the 'data' mesh axis.
  c.log_every_steps = 10

  # Data: a built TFDS dataset (msta_jax.tools.build, or generated: the synthetic set).
  c.data = ml_collections.ConfigDict(dict(
      dataset='ssv2',              # Class-list / description family (shipped assets) or 'synthetic'.
      descriptions='ssv2',         # Shipped set name, a JSON path, or 'metadata' (from the dataset).
      data_dir='~/tensorflow_datasets',
      name='ssv2',                 # Built dataset folder under data_dir.
      train_split='',
      val_split='',                # Held-out split for model selection ('' = keep the last checkpoint).
      test_splits=(),              # Split names; 'dataset_folder:split' evaluates another built dataset.
      seed=0,                      # Generator seed of generated datasets (synthetic).
      generator_args='',           # Generated datasets: sizes as 'k=v,...' (e.g. 'test_per_class=4').
      num_threads=4,
      augment=ml_collections.ConfigDict(dict(crop_scale=(0.5, 1.0), flip=True, color_jitter=0.8,
                                             grayscale=0.2)),
  ))

  # Evaluation: views per test video (clips x crops), model selection on val with one view.
  c.eval = ml_collections.ConfigDict(dict(
      every_epochs=5.0, batch_size=8, clips=2, crops=3, resize='short_side', val_clips=1, val_crops=1,
      base_novel=(),               # Two test splits (base, novel) whose top-1 give the harmonic mean.
  ))

  # Checkpoints, mesh and parameter placement.
  c.checkpoint = ml_collections.ConfigDict(dict(keep=2, async_save=True))
  c.export_backbone = False        # Also save the final full model with models.save (pre-training).
  c.mesh = (('data', -1), ('model', 1))
  # Parameter placement (msta_jax/train/sharding.py): rules first, the preset for the rest.
  c.sharding = ml_collections.ConfigDict(dict(
      preset='replicated',         # 'replicated' or 'fsdp' (parameters and optimizer moments over 'data').
      rules=(),                    # (regex, partition spec) on '/' paths, e.g. ('.*/kernel', (None, 'model')).
      fsdp_min_bytes=2**20))       # fsdp: smaller leaves stay replicated.
  return c
