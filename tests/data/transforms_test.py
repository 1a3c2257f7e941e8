"""Training augmentation math against the op definitions, written out plainly in float64."""
import numpy as np
import pytest
from PIL import Image

from msta_jax.data import transforms as T

LUMA = np.array([0.299, 0.587, 0.114])


def reference_op(a: np.ndarray, op: str, f: float) -> np.ndarray:
  """torchvision ColorJitter's definitions (hue as a YIQ rotation), clip mean for contrast, then clip."""
  gray = (a @ LUMA)[..., None]
  if op == 'brightness':
    out = a * f
  elif op == 'contrast':
    out = (a - gray.mean()) * f + gray.mean()
  elif op == 'saturation':
    out = (a - gray) * f + gray
  else:
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    y = a @ yiq.T
    i, q = y[..., 1].copy(), y[..., 2].copy()
    y[..., 1], y[..., 2] = i * np.cos(f) - q * np.sin(f), i * np.sin(f) + q * np.cos(f)
    out = y @ np.linalg.inv(yiq).T
  return np.clip(out, 0.0, 1.0)


@pytest.mark.parametrize('seed', range(6))
def test_jitter_equals_the_op_definitions_in_the_drawn_order(seed):
  rng = np.random.default_rng(seed)
  x = rng.random((3, 9, 7, 3)).astype(np.float32)
  ops = T.jitter_ops(np.random.default_rng(100 + seed))
  assert sorted(name for name, _ in ops) == ['brightness', 'contrast', 'hue', 'saturation']
  want = x.astype(np.float64)
  for name, f in ops:
    want = reference_op(want, name, f)
  got = T.apply_jitter(x.copy(), ops)
  assert got.dtype == np.float32 and got.shape == x.shape
  np.testing.assert_allclose(got, want, atol=2e-6)
  assert not np.allclose(got, x, atol=1e-3)  # The draw changed the clip.


def test_jitter_draws_are_within_colorjitter_ranges_and_vary_in_order():
  orders = set()
  for seed in range(40):
    ops = dict(T.jitter_ops(np.random.default_rng(seed)))
    assert 0.6 <= ops['brightness'] <= 1.4 and 0.6 <= ops['contrast'] <= 1.4
    assert 0.8 <= ops['saturation'] <= 1.2 and abs(ops['hue']) <= 0.1 * 2 * np.pi
    orders.add(tuple(T.jitter_ops(np.random.default_rng(seed)))[0][0])
  assert len(orders) == 4  # Each op comes first for some clip.


def test_train_clip_without_augmentation_is_resize_and_normalise():
  rng = np.random.default_rng(0)
  frames = [Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)) for _ in range(2)]
  off = T.Augment(crop_scale=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale=0.0)
  got = T.train_clip(frames, 16, off, np.random.default_rng(1))
  resized = np.stack([np.asarray(f.resize((16, 16), Image.BICUBIC)) for f in frames])
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(got, resized)
  flipped = T.train_clip(frames, 16, T.Augment(crop_scale=(1.0, 1.0), flip=True, color_jitter=0.0, grayscale=1.0),
                         np.random.default_rng(3))
  assert flipped.dtype == np.float32  # Greyscale on: float32 0..1, normalised on the device.
  gray = (resized / 255 @ LUMA)[..., None]
  candidates = [np.repeat(g, 3, -1) for g in (gray, gray[:, :, ::-1])]
  assert min(np.abs(flipped - c).max() for c in candidates) < 1e-6  # Greyscale always (p=1), maybe mirrored.