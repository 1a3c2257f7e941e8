"""data.decoded_cache_mb: the frame cache gives the loader's batches bit for bit, within its budget."""
import pickle

import numpy as np
import pytest

from msta_jax.data import frame_cache, pipeline, transforms
from tests.data.pipeline_test import PipeClips
from tests.data.synthetic_test import SPEC

SYNTHETIC_CLIP = pipeline.ClipSpec(num_frames=8, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)
SYNTHETIC_AUG = transforms.Augment(crop_scale=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale=0.0)


@pytest.fixture(scope='module')
def pipe_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('tfds'))
  PipeClips(data_dir=d, file_format='array_record').download_and_prepare()
  return d


def _batches(src, clip, aug, n, **kw):
  loader = pipeline.TrainLoader(src, global_batch=4, clip=clip, augment=aug, seed=3, num_threads=2, **kw)
  try:
    return [next(loader) for _ in range(n)], loader.cache
  finally:
    loader.close()


def _assert_same(got, want):
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert sorted(g) == sorted(w)
    for k in w:
      assert g[k].dtype == w[k].dtype, k
      np.testing.assert_array_equal(g[k], w[k], err_msg=k)


def test_synthetic_path_is_bit_identical_and_decodes_each_frame_once(synthetic_small_build):
  """The demo's path: 32x32 frames at model size 32, no crop (the cached frames skip PIL's resize, which
  would return the same pixels), over three epochs of the split."""
  data_dir, _ = synthetic_small_build
  src = pipeline.open_split(data_dir, f'synthetic/{SPEC.name}', 'few_shot_train_k2')
  n = 3 * (len(src) // 4)
  want, none = _batches(src, SYNTHETIC_CLIP, SYNTHETIC_AUG, n)
  got, cache = _batches(src, SYNTHETIC_CLIP, SYNTHETIC_AUG, n, decoded_cache_bytes=64 << 20)
  assert none is None
  _assert_same(got, want)
  stored = len(src) * 8  # Every clip stores 8 frames and samples all 8, so all are kept after one epoch.
  assert len(cache._frames) == stored and cache.bytes == stored * 32 * 32 * 3
  # At least the two later epochs hit (the reading threads may prefetch a few batches more).
  assert cache.hits >= (n * 4 - len(src)) * 8 and cache.misses >= stored


@pytest.mark.parametrize('aug', [transforms.Augment(), transforms.Augment(uint8_colour=False)],
                         ids=['every_augmentation', 'float32_wire'])
def test_resized_and_augmented_path_is_bit_identical(pipe_dir, aug):
  """16x24 frames cropped and resized to 8 (PIL from the cached arrays), flip and colour on."""
  src = pipeline.open_split(pipe_dir, 'pipe_clips', 'train')
  clip = pipeline.ClipSpec(num_frames=4, image_size=8, mean=(0.0,) * 3, std=(1.0,) * 3)
  n = 3 * (len(src) // 4)
  want, _ = _batches(src, clip, aug, n)
  got, cache = _batches(src, clip, aug, n, decoded_cache_bytes=1 << 20)
  _assert_same(got, want)
  assert cache.hits > 0 and 0 < len(cache._frames) <= len(src) * 12


def test_budget_caps_the_cache_and_reads_stay_exact(pipe_dir):
  """A budget of 10 frames holds 10 and never more; frames past it decode every time, same batches."""
  src = pipeline.open_split(pipe_dir, 'pipe_clips', 'train')
  clip = pipeline.ClipSpec(num_frames=4, image_size=8, mean=(0.0,) * 3, std=(1.0,) * 3)
  frame_bytes = 16 * 24 * 3
  want, _ = _batches(src, clip, transforms.Augment(), 10)
  got, cache = _batches(src, clip, transforms.Augment(), 10, decoded_cache_bytes=10 * frame_bytes + 5)
  _assert_same(got, want)
  assert cache.bytes == 10 * frame_bytes and len(cache._frames) == 10
  assert cache.describe().startswith(f'10 frames in {10 * frame_bytes / 2**20:.1f} of ')
  assert cache.misses > 10  # Frames past the budget decode every time they are picked.


def test_cached_frames_are_read_only_and_pickling_starts_empty(pipe_dir):
  src = pipeline.open_split(pipe_dir, 'pipe_clips', 'train')
  cache = frame_cache.FrameCache(1 << 20)
  ex = pipeline.parse(src.source[0])
  frames = cache.frames(0, ex['frames'], np.array([0, 1, 1]))
  assert frames[1] is frames[2] and cache.misses == 2 and cache.hits == 1
  want = np.asarray(transforms.decode_frames(ex['frames'], np.array([1]))[0])
  np.testing.assert_array_equal(frames[1], want)
  with pytest.raises(ValueError, match='read-only'):
    frames[0][0, 0, 0] = 1
  copy = pickle.loads(pickle.dumps(cache))  # What a grain worker process receives.
  assert copy.max_bytes == 1 << 20 and copy.bytes == 0 and not copy._frames
  with pytest.raises(ValueError, match='decoded_cache_mb must be >= 0'):
    frame_cache.FrameCache(-1)
