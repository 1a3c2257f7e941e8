"""Methods as config changes: what trains, which adapters, how a video is seen. One trainer runs them all.

`apply(config, method)` edits a config in place; protocol files call it with their `method=` argument.

- msta: the paper's adapters in both towers (configs/base.py), backbone frozen.
- msta_no_temporal_conv: the same adapters with the temporal conv switched off, so what the temporal
  path buys shows in a side-by-side run.
- frame_average: the backbone applied to each frame alone and the frame features averaged, ALL weights
  fine-tuned (ViFi-CLIP's recipe; on the CLIP backbone this is the ViFi-CLIP baseline).
- zero_shot: no training; class-name prompts against the backbone as it is.
- pretrain: contrastive video-caption training of every weight (tiny backbones, labs' own backbones).
"""
from __future__ import annotations

ALL_TRAINABLE = (('.*', 'trainable'),)
ALL_FROZEN = (('.*', 'frozen'),)


def _msta(c) -> None:
  c.msta.enabled = True
  c.freeze = (('msta/.*', 'trainable'), ('.*', 'frozen'))


def _msta_no_temporal_conv(c) -> None:
  _msta(c)
  c.msta.temporal_conv = False


def _frame_average(c) -> None:
  c.msta.enabled = False
  c.model.video_mode = 'frame_average'
  c.freeze = ALL_TRAINABLE
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


METHODS = {
    'msta': _msta,
    'msta_no_temporal_conv': _msta_no_temporal_conv,
    'frame_average': _frame_average,
    'zero_shot': _zero_shot,
    'pretrain': _pretrain,
}


def apply(config, method: str):
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; known: {sorted(METHODS)}')
  METHODS[method](config)
  config.method = method
  return config
