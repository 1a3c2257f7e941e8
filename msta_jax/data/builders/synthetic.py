"""TFDS builder of the synthetic known-answer dataset; the clips, classes and splits are data/synthetic.py's.

    from msta_jax.data.builders import synthetic as synthetic_builder
    builder = synthetic_builder.build('/tmp/tfds', seed=0)     # builds once; later calls only open it
    src = builder.as_data_source('zs_test')                     # array_record: random access (pipeline.py)
    builder.info.metadata['splits']['zs_test']['classes']       # the class list the labels index
    builder.info.metadata['descriptions']                       # spatial/temporal texts of all 96 classes

Layout: DATA_DIR/synthetic/<Spec.name>/1.0.0, where Spec.name is 'seed0' for the default sizes and
'seed0_<hash of frames, size and split sizes>' otherwise, so another seed or size never reuses a build.
Examples follow data/features.py's schema (video, label, path '', fps, orig_frames) plus caption,
shape, colour, motion and clip_id. Frames are lossless PNG, so a twin clip read back is still exactly
the reversed frames; they are encoded here with zlib (one small IDAT per frame), about 10x faster than
TFDS's own encoder, which runs a TensorFlow graph per frame. Files are array_record, which the
pipeline's random-access loaders require.
"""
from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Any, Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from msta_jax.data import features, synthetic

FILE_FORMAT = 'array_record'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _png_chunk(kind: bytes, data: bytes) -> bytes:
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def encode_png(frames: np.ndarray) -> list[bytes]:
  """uint8 [T, H, W, 3] -> one RGB PNG file (bytes) per frame, filter 'none', deterministic.

  zlib level 1: 3x faster than 6 and, on these mostly black frames, about 25 bytes larger.
  """
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'expected uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}')
  t, h, w, _ = frames.shape
  raw = np.zeros((t, h, 1 + 3 * w), np.uint8)     # each row: filter byte 0, then the RGB bytes
  raw[:, :, 1:] = frames.reshape(t, h, 3 * w)
  header = _PNG_SIGNATURE + _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
  end = _png_chunk(b'IEND', b'')
  return [header + _png_chunk(b'IDAT', zlib.compress(raw[i].tobytes(), 1)) + end for i in range(t)]


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
  """A BuilderConfig carrying the Spec (seed, frames, size and split sizes); its name is Spec.name."""
  spec: synthetic.Spec = synthetic.Spec()

  @classmethod
  def of(cls, spec: synthetic.Spec) -> 'SyntheticConfig':
    sizes = ', '.join(f'{k}={v}' for k, v in spec.to_dict().items())
    return cls(name=spec.name, description=f'Synthetic clips: {sizes}.', spec=spec)


class Synthetic(tfds.core.GeneratorBasedBuilder):
  """Shapes moving in reversal pairs; classes need time (see msta_jax/data/synthetic.py)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release: 96 classes, 4 protocols, val/test in reversal pairs.'}
  BUILDER_CONFIGS = [SyntheticConfig.of(synthetic.Spec())]

  @property
  def spec(self) -> synthetic.Spec:
    return self.builder_config.spec

  def _info(self) -> tfds.core.DatasetInfo:
    extra = {'caption': tfds.features.Text(), 'shape': tf.int64, 'colour': tf.int64,
             'motion': tf.int64, 'clip_id': tf.int64}
    return tfds.core.DatasetInfo(
        builder=self,
        description=synthetic.__doc__.split('\n')[0],
        features=features.features_dict('png', extra=extra),
        metadata=tfds.core.MetadataDict(synthetic.metadata(self.spec)),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is generated.
    plans = synthetic.plan(self.spec)
    pools = [p.pool for p in plans.values()]
    # Clips of the test, val and sup_train pools recur in several splits: PNG-encode them once (the
    # encoded frames of all three take ~10 MB at the default sizes).
    self._shared_pools = {p for p in pools if pools.count(p) > 1}
    self._png_cache: dict[tuple[int, int], list[bytes]] = {}
    return {name: self._generate_examples(p) for name, p in plans.items()}

  def _generate_examples(self, split: synthetic.SplitPlan) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = self.spec
    for ex in synthetic.examples(spec, split):
      key = (ex['clip_id'], ex['motion'])       # unique within a split (twins share clip_id)
      if split.pool in self._shared_pools:
        frames = self._png_cache.get(key)
        if frames is None:
          frames = self._png_cache[key] = encode_png(ex['video'])
      else:
        frames = encode_png(ex['video'])
      yield f'{key[0]}-{key[1]}', {
          'video': frames, 'label': ex['label'], 'path': '', 'fps': synthetic.FPS,
          'orig_frames': spec.frames, 'caption': ex['caption'], 'shape': ex['shape'],
          'colour': ex['colour'], 'motion': ex['motion'], 'clip_id': ex['clip_id'],
      }


def builder(data_dir: str, seed: int = 0, **sizes) -> Synthetic:
  """The builder of Spec(seed, **sizes) under `data_dir`, built or not (no work done)."""
  spec = synthetic.Spec(seed=seed, **sizes)
  # TFDS refuses a new config object named like a registered one: pass the registered one by name.
  registered = {c.name: c for c in Synthetic.BUILDER_CONFIGS}
  config = spec.name if spec.name in registered else SyntheticConfig.of(spec)
  return Synthetic(config=config, data_dir=data_dir, file_format=FILE_FORMAT)


def build(data_dir: str, seed: int = 0, **sizes) -> Synthetic:
  """Builds Spec(seed, **sizes) into `data_dir` unless it is there already; returns the builder.

  Cheap to call again: an existing build is only opened (and checked to be the same Spec).
  `sizes` are Spec's other fields: frames, size, pretrain_per_class, few_shot_shots, ...
  """
  b = builder(data_dir, seed=seed, **sizes)
  if not b.is_prepared():
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(
        download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
    b = builder(data_dir, seed=seed, **sizes)  # reopen: info (split sizes, metadata) from disk
  stored = dict(b.info.metadata or {}).get('spec')
  if stored != b.spec.to_dict():
    raise ValueError(f'{b.data_dir} holds a build of {stored}, not of {b.spec.to_dict()}; '
                     'remove the directory')
  return b
