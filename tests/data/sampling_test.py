"""Test-clip samplers: our fixed offsets and ViFi-CLIP's random multi-view draw (mmaction train mode)."""
import numpy as np
import pytest

from msta_jax.data import test_sampling
from msta_jax.data import transforms


def test_fixed_is_the_segment_offsets_and_hmdb_views_repeat_on_64_stored_frames():
  picks = test_sampling.clip_indices('fixed', 64, 8, 10, seed=0, index=3)
  for c, idx in enumerate(picks):
    np.testing.assert_array_equal(idx, transforms.segment_indices(64, 8, offset=(c + 0.5) / 10))
  # HMDB's 10 clips x 8 frames on 64 stored frames: offsets 0,1,2,2,3,4,5,6,6,7 -> 8 distinct clips.
  assert [int(p[0]) for p in picks] == [0, 1, 2, 2, 3, 4, 5, 6, 6, 7]
  assert len({tuple(p) for p in picks}) == 8
  assert len({tuple(p) for p in test_sampling.clip_indices('fixed', 80, 8, 10, seed=0, index=3)}) == 10


def test_vifi_multiview_draws_one_random_frame_per_segment_per_clip():
  picks = test_sampling.clip_indices('vifi_multiview', 70, 8, 10, seed=1, index=5)
  assert len(picks) == 10 and all(p.shape == (8,) for p in picks)
  avg = 70 // 8  # mmaction: integer segment length; the last 6 frames are never drawn.
  for p in picks:
    assert np.all((p >= np.arange(8) * avg) & (p < np.arange(8) * avg + avg)), p
  assert len({tuple(p) for p in picks}) > 1
  # Seeded per (seed, video): repeatable, and another video gets other draws.
  again = test_sampling.clip_indices('vifi_multiview', 70, 8, 10, seed=1, index=5)
  assert all(np.array_equal(a, b) for a, b in zip(picks, again))
  other = test_sampling.clip_indices('vifi_multiview', 70, 8, 10, seed=1, index=6)
  assert not all(np.array_equal(a, b) for a, b in zip(picks, other))


def test_vifi_multiview_short_videos_and_one_clip():
  # n < T: round(i * n / T) (numpy's half-to-even), as mmaction's avg_interval == 0 branch.
  for p in test_sampling.clip_indices('vifi_multiview', 5, 8, 2, seed=0, index=0):
    np.testing.assert_array_equal(p, [0, 1, 1, 2, 2, 3, 4, 4])
  # One clip: ViFi-CLIP keeps test_mode=True (segment midpoints), i.e. our fixed sampler.
  one = test_sampling.clip_indices('vifi_multiview', 64, 8, 1, seed=0, index=0)
  np.testing.assert_array_equal(one[0], transforms.segment_indices(64, 8))
  with pytest.raises(ValueError, match=r"config.eval.test_sampler='random'; allowed"):
    test_sampling.clip_indices('random', 64, 8, 2, seed=0, index=0)


def test_the_default_storage_gives_hmdb_ten_distinct_test_clips():
  """Builder 1.1.0 stores enough frames for HMDB's test views (10 clips x 8 frames, configs/hmdb_fewshot.py)."""
  from configs import hmdb_fewshot
  from msta_jax.data import decode
  c = hmdb_fewshot.get_config('shots=2')
  stored = decode.StorageOptions().max_frames
  picks = test_sampling.clip_indices('fixed', stored, c.model.num_frames, c.eval.clips, seed=0, index=0)
  assert c.eval.clips == 10 and len({tuple(p) for p in picks}) == c.eval.clips
