"""The one example schema every video dataset here is built with, and the per-split metadata.

Every TFDS dataset (real-video builders and the synthetic set) stores examples as

    video       uint8 [T, H, W, 3], tfds.features.Video (JPEG frames by default; lossless PNG allowed)
    label       int64, the LOCAL id into the class list of the example's split (base / novel / full)
    path        the video's path relative to the videos folder ('' for generated clips)
    fps         float32, frames per second of the STORED frames
    orig_frames int32, decoded frames before subsampling (timestamps, not container counts)

plus optional extra scalar features (the synthetic set adds `caption`, `shape`, `colour`, `motion`).
Class lists live in the dataset's metadata, per split, so a reader never guesses which list an id
indexes:

    info.metadata['splits'][split] = {'classes': [...names...], 'class_list': 'full' | 'base' | ...,
                                      'source': '<list file or generator>', ...}
"""
from __future__ import annotations

from typing import Any

VIDEO_KEYS = ('video', 'label', 'path', 'fps', 'orig_frames')


def features_dict(encoding: str = 'jpeg', extra: dict[str, Any] | None = None):
  """The tfds FeaturesDict of the schema above (imports TensorFlow: data side only)."""
  import tensorflow as tf  # Lazy: the schema's constants are read where TensorFlow is absent.
  import tensorflow_datasets as tfds
  if encoding not in ('jpeg', 'png'):
    raise ValueError(f"video encoding must be 'jpeg' or 'png', got {encoding!r}")
  feats = {
      'video': tfds.features.Video(shape=(None, None, None, 3), encoding_format=encoding),
      'label': tf.int64,
      'path': tfds.features.Text(),
      'fps': tf.float32,
      'orig_frames': tf.int32,
  }
  feats.update(extra or {})
  return tfds.features.FeaturesDict(feats)


def split_metadata(classes: list[str], class_list: str, source: str, **extra: Any) -> dict[str, Any]:
  """The metadata entry of one split (see module docstring)."""
  return {'classes': list(classes), 'class_list': class_list, 'source': source, **extra}
