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
  c.recipe = 'msta_jax'      # 'msta_jax' (ours) or 'authors' (the paper's way): configs/recipes.py, docs/parity.md.

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

  # Optimiser and schedule (train/schedules.py: 'cosine', 'timm_cosine' with floor lr x lr_min_ratio,
  # 'constant'; lr_after_step: update k runs at f(k - 1), as timm steps its scheduler).
  c.optim = ml_collections.ConfigDict(dict(
      lr=1e-3, weight_decay=1e-3, b1=0.9, b2=0.999, eps=1e-8, schedule='cosine', warmup_epochs=5.0,
      epochs=50.0, grad_clip=0.0, lr_min_ratio=0.0, lr_after_step=False,
      accum_steps=1,               # Micro-batches per step (memory); classification loss only.
      skip_nonfinite=0))            # Skip at most this many non-finite steps (state unchanged); 0: stop at the first.
  c.total_steps = 0                # 0: epochs x steps per epoch.
  c.batch_size = 32                # Global batch, split over the 'data' mesh axis.
  c.log_every_steps = 10
  c.memory_limit_bytes = 0         # Per-device limit for the pre-flight memory check where the device reports none.
  c.transfer_guard = 'allow'       # jax.transfer_guard of the steps between logging points; 'disallow' makes
                                   # any implicit host<->device transfer there an error (the loop makes none).

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
      num_threads=4,               # Reading/augmenting threads per input process (main or worker).
      allow_partial=False,         # Train on a dataset missing > 1% of a split's videos (docs/data.md).
      num_workers=-1,              # grain worker processes building training batches (MultiprocessingOptions);
                                   # -1: one per core less two (pipeline.default_num_workers), 0: threads only.
      bad_records='error',         # A training record that fails to read/decode: 'error' (names shard and
                                   # example) or 'skip' (deterministic replacement, counted: data/bad_records.py).
      decoded_cache_mb=0,          # Decoded training frames kept in memory per input process (data/frame_cache.py):
                                   # for small splits read every epoch; 0: decode every time. Same batches either way.
      # uint8_colour: round colour-jittered / greyed clips to uint8 (4x fewer bytes to the device, as
      # torchvision's PIL ColorJitter; moves pixels by at most half a grey level). False: float32 0..1.
      augment=ml_collections.ConfigDict(dict(crop_scale=(0.5, 1.0), flip=True, color_jitter=0.8,
                                             grayscale=0.2, uint8_colour=True)),
  ))

  # Evaluation: views per test video (clips x crops), model selection on val with one view.
  c.eval = ml_collections.ConfigDict(dict(
      every_epochs=5.0, batch_size=8, clips=2, crops=3, resize='short_side', val_clips=1, val_crops=1,
      base_novel=(),               # Two test splits (base, novel) whose top-1 give the harmonic mean.
      view_fusion='logits',        # Views of a video: mean scaled 'logits', or mean 'softmax' probabilities.
      test_sampler='fixed',        # Test clips: 'fixed' offsets, or ViFi-CLIP's 'vifi_multiview' (random).
      test_every_epochs=0.0,       # > 0: also score the test splits while training (test-set selection,
  ))                               # the authors' way, reported apart: train/test_selection.py).

  # Checkpoints, mesh and parameter placement.
  # every_steps / every_minutes: checkpoints between evaluations (0 = off), bounding the work a fault
  # loses; resume_force: resume despite changed training inputs (docs/reliability.md).
  c.checkpoint = ml_collections.ConfigDict(dict(keep=2, async_save=True, every_steps=0, every_minutes=10.0,
                                                resume_force=False))
  # Multi-process runs: a peer silent this long stops every process, naming it (no hang).
  c.distributed = ml_collections.ConfigDict(dict(peer_timeout_s=120))
  c.export_backbone = False        # Also save the final full model with models.save (pre-training).
  c.mesh = (('data', -1), ('model', 1))
  # Parameter placement (msta_jax/train/sharding.py): rules first, the preset for the rest.
  c.sharding = ml_collections.ConfigDict(dict(
      preset='replicated',         # 'replicated' or 'fsdp' (parameters and optimizer moments over 'data').
      rules=(),                    # (regex, partition spec) on '/' paths, e.g. ('.*/kernel', (None, 'model')).
      fsdp_min_bytes=2**20))       # fsdp: smaller leaves stay replicated.
  return c
