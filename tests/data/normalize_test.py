"""Device normalisation of the wire's pixels against the host arithmetic it replaced, bit for bit."""
import dataclasses

import jax
import numpy as np
import pytest
from PIL import Image

from msta_jax.data import normalize
from msta_jax.data import transforms as T
from tests.data import transforms_test

# The model statistics the configs use: ViCLIP's (ImageNet), CLIP's, and the synthetic set's.
STATS = {'imagenet': ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
         'clip': ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
         'synthetic': ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))}


def old_host_normalise(x, mean, std):
  """transforms.train_clip's normalisation at b440921 (host), on a clip of the wire: uint8, or float32
  0..1 (colour ops with uint8_colour=False)."""
  if x.dtype == np.uint8:
    x = x.astype(np.float32)
    x *= np.float32(1 / 255)
  x = x - np.asarray(mean, np.float32)
  x *= 1 / np.asarray(std, np.float32)
  return x


def old_train_clip(frames, size, aug, rng, mean, std):
  """transforms.train_clip as it was at b440921 (host normalisation) for augmentations WITHOUT colour ops,
  the reference for bit-identity (colour ops: tests/data/transforms_test.py)."""
  assert not T.colour_ops(aug)
  return old_host_normalise(transforms_test.old_train_clip(frames, size, aug, rng), mean, std)


def old_test_normalise(views_u8, mean, std):
  """transforms.test_views' arithmetic at b440921 on its resized uint8 crops."""
  x = views_u8.astype(np.float32) / 255.0
  return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def _frames(seed, n=3, w=40, h=30):
  rng = np.random.default_rng(seed)
  return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(n)]


AUGMENTS = {
    'synthetic_tiny': T.Augment(crop_scale=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale=0.0),
    'crop_flip': T.Augment(crop_scale=(0.5, 1.0), flip=True, color_jitter=0.0, grayscale=0.0),
    'all_on': T.Augment(),
    'grayscale_only': T.Augment(crop_scale=(0.5, 1.0), flip=True, color_jitter=0.0, grayscale=0.5),
}


@pytest.mark.parametrize('stats', sorted(STATS))
@pytest.mark.parametrize('aug', sorted(AUGMENTS))
def test_train_clips_normalised_on_device_equal_the_old_host_path_bit_for_bit(aug, stats):
  mean, std = STATS[stats]
  fn = jax.jit(lambda v: normalize.model_input(v, mean, std, 'train'))
  for seed in range(8):
    frames = _frames(seed)
    wire = T.train_clip(frames, 16, AUGMENTS[aug], np.random.default_rng(seed))
    assert wire.dtype == np.uint8  # Colour ops too: rounded to uint8 by default (uint8_colour).
    floats = T.train_clip(frames, 16, dataclasses.replace(AUGMENTS[aug], uint8_colour=False),
                          np.random.default_rng(seed))
    assert floats.dtype == (np.float32 if T.colour_ops(AUGMENTS[aug]) else np.uint8)
    for x in (wire, floats):
      got = np.asarray(fn(x))
      assert got.dtype == np.float32
      want = old_host_normalise(x, mean, std)
      np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f'seed {seed}')
    if not T.colour_ops(AUGMENTS[aug]):  # Crop, resize and flip too: the whole old host path.
      want = old_train_clip(frames, 16, AUGMENTS[aug], np.random.default_rng(seed), mean, std)
      np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=f'seed {seed}')


@pytest.mark.parametrize('stats', sorted(STATS))
def test_every_uint8_value_takes_the_old_arithmetic_under_both_rules(stats):
  mean, std = STATS[stats]
  every = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1).reshape(16, 16, 3)
  train = np.asarray(jax.jit(lambda v: normalize.model_input(v, mean, std, 'train'))(every))
  old = every.astype(np.float32) * np.float32(1 / 255)
  old = (old - np.asarray(mean, np.float32)) * (1 / np.asarray(std, np.float32))
  np.testing.assert_array_equal(train.view(np.uint32), old.view(np.uint32))
  test = np.asarray(jax.jit(lambda v: normalize.model_input(v, mean, std, 'test'))(every))
  np.testing.assert_array_equal(test.view(np.uint32), old_test_normalise(every, mean, std).view(np.uint32))


def test_eval_views_normalised_on_device_equal_the_old_host_path_bit_for_bit():
  mean, std = STATS['clip']
  frames = _frames(0, n=12, w=36, h=20)
  views = T.clip_views(lambda idx: [frames[i] for i in idx], 12, 4, 16, 2, 3, 'short_side')
  assert views.dtype == np.uint8 and views.shape == (6, 4, 16, 16, 3)
  got = np.asarray(jax.jit(lambda v: normalize.model_input(v, mean, std, 'test'))(views))
  np.testing.assert_array_equal(got.view(np.uint32), old_test_normalise(views, mean, std).view(np.uint32))


def test_unknown_rule_and_float_views_are_refused():
  with pytest.raises(ValueError, match="rule must be one of \\['test', 'train'\\], got 'val'"):
    normalize.table((0.5,) * 3, (0.25,) * 3, 'val')
  with pytest.raises(ValueError, match='evaluation views are uint8'):
    normalize.model_input(np.zeros((2, 3), np.float32), (0.5,) * 3, (0.25,) * 3, 'test')


def test_uint8_colour_rounds_jittered_clips_to_the_nearest_grey_level():
  """The default uint8 wire with colour ops on: the same draws, pixels within half a grey level of the
  float32 wire (uint8_colour=False)."""
  mean, std = STATS['imagenet']
  floats_aug = T.Augment(uint8_colour=False)
  assert T.wire_dtype(T.Augment()) == np.uint8 and T.wire_dtype(floats_aug) == np.float32
  fn = jax.jit(lambda v: normalize.model_input(v, mean, std, 'train'))
  for seed in range(4):
    frames = _frames(seed)
    floats = T.train_clip(frames, 16, floats_aug, np.random.default_rng(seed))
    wire = T.train_clip(frames, 16, T.Augment(), np.random.default_rng(seed))
    assert wire.dtype == np.uint8 and floats.dtype == np.float32
    np.testing.assert_array_equal(wire, np.rint(floats * 255).astype(np.uint8))
    assert np.abs(wire / 255 - floats).max() <= 0.5 / 255 + 1e-7
    want = old_host_normalise(floats, mean, std)
    np.testing.assert_allclose(np.asarray(fn(wire)), want, atol=0.5 / 255 / min(std) + 1e-6)
