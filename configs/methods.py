"""Methods as config changes: what trains, which adapters, how a video is seen. One trainer runs them all.

`apply(config, method)` edits a config in place; protocol files call it with their `method=` argument.

- msta: the paper's adapters in both towers (configs/base.py), backbone frozen.
- msta_no_temporal_conv: the same adapters with the temporal conv switched off, so what the temporal
  path buys shows in a side-by-side run.
- frame_average: the backbone applied to each frame alone and the frame features averaged, every weight
  fine-tuned but the token embedding (ViFi-CLIP's recipe; on the CLIP backbone this is the ViFi-CLIP
  baseline). ViFi-CLIP embeds the class prompts' tokens once, under no_grad, into a buffer
  (`complete_text_embeddings`, trainers/vificlip.py) and never trains the token table.
- zero_shot: no training; class-name prompts against the backbone as it is.
- pretrain: contrastive video-caption training of every weight (tiny backbones, labs' own backbones).
- full_finetune: every weight of the backbone trains, its own video mode kept (ViCLIP joint).
- linear_probe: a cosine classifier on frozen video features, one weight vector per training class,
  started from the class prompts' text embeddings (so step 0 equals zero-shot); it has no weights for
  classes it never trained on, so novel / zero-shot splits report no number.
- lora: LoRA (rank config.lora.rank) on the q/v projections of config.lora's blocks, both towers.
- adaptformer: AdaptFormer's parallel bottleneck MLPs in config.adaptformer's blocks, both towers.
- Ablations of MSTA (the paper's table): msta_language_only, msta_vision_only, msta_no_shared,
  msta_no_consistency, and msta_n{1,2,4,8}: N spatial + N temporal descriptions per class.
"""
from __future__ import annotations

ALL_TRAINABLE = (('.*', 'trainable'),)
ALL_FROZEN = (('.*', 'frozen'),)
VIFI_CLIP = (('text/token_embedding/.*', 'frozen'), ('.*', 'trainable'))  # See frame_average above.


def _msta(c) -> None:
  c.msta.enabled = True
  c.freeze = (('msta/.*', 'trainable'), ('.*', 'frozen'))


def _msta_no_temporal_conv(c) -> None:
  _msta(c)
  c.msta.temporal_conv = False


def _frame_average(c) -> None:
  c.msta.enabled = False
  c.model.video_mode = 'frame_average'
  c.freeze = VIFI_CLIP
  c.loss.consistency_weight = 0.0   # ViFi-CLIP trains with cross-entropy alone.


def _zero_shot(c) -> None:
  c.msta.enabled = False
  c.freeze = ALL_FROZEN
  c.optim.epochs = 0.0
  c.data.train_split = ''
  c.data.val_split = ''


def _pretrain(c) -> None:
  c.msta.enabled = False
  c.freeze = ALL_TRAINABLE
  c.loss.name = 'contrastive'
  c.export_backbone = True


def _full_finetune(c) -> None:
  c.msta.enabled = False
  c.freeze = ALL_TRAINABLE
  c.loss.consistency_weight = 0.0


def _linear_probe(c) -> None:
  c.msta.enabled = False
  c.freeze = (('probe/.*', 'trainable'), ('.*', 'frozen'))
  c.loss.consistency_weight = 0.0


def _lora(c) -> None:
  c.msta.enabled = False
  c.lora.enabled = True
  c.freeze = (('.*/lora/.*', 'trainable'), ('.*', 'frozen'))
  c.loss.consistency_weight = 0.0


def _adaptformer(c) -> None:
  c.msta.enabled = False
  c.adaptformer.enabled = True
  c.freeze = (('.*/adaptmlp/.*', 'trainable'), ('.*', 'frozen'))
  c.loss.consistency_weight = 0.0


def _msta_variant(section: str, **values):
  """MSTA with some fields of one config section changed (an ablation)."""
  def apply(c) -> None:
    _msta(c)
    for k, v in values.items():
      c[section][k] = v
  return apply


METHODS = {
    'msta': _msta,
    'msta_no_temporal_conv': _msta_no_temporal_conv,
    'frame_average': _frame_average,
    'zero_shot': _zero_shot,
    'pretrain': _pretrain,
    'full_finetune': _full_finetune,
    'linear_probe': _linear_probe,
    'lora': _lora,
    'adaptformer': _adaptformer,
    'msta_language_only': _msta_variant('msta', video=False),
    'msta_vision_only': _msta_variant('msta', text=False),
    'msta_no_shared': _msta_variant('msta', shared=False),
    'msta_no_consistency': _msta_variant('loss', consistency_weight=0.0),
    **{f'msta_n{n}': _msta_variant('loss', num_descriptions=n) for n in (1, 2, 4, 8)},
}


def apply(config, method: str):
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; known: {sorted(METHODS)}')
  METHODS[method](config)
  config.method = method
  return config
