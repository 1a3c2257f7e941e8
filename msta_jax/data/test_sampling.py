"""Which frames each test clip of a video takes (`config.eval.test_sampler`).

- 'fixed' (ours): clip c of C takes, in each of T equal segments, the frame at (c + 0.5) / C of it
  (transforms.segment_indices); deterministic, and the C clips never coincide while the video has at
  least C x T frames.
- 'vifi_multiview' (the MSTA authors' code base: ViFi-CLIP `datasets/build.py` builds the test pipeline
  with `SampleFrames(clip_len=1, frame_interval=1, num_clips=T, multiview=NUM_CLIP)` whenever
  NUM_CLIP > 1, and that constructor leaves `test_mode=False`): each clip is an independent TRAINING-mode
  draw of mmaction's `_get_train_clips`: avg = n // T; if avg > 0, frame i*avg + randint(avg) per segment;
  else (n < T) round(i * n / T). So the clips are random, may repeat frames, and differ from run to run.
  With NUM_CLIP == 1 ViFi-CLIP keeps `test_mode=True` (segment midpoints): 'fixed' with one clip.
  Differences kept on purpose: our draws are seeded per video (numpy PCG64 from (seed, video index)) so a
  run can be repeated, and n counts the frames we STORE (the builder keeps at most its frame budget),
  where ViFi-CLIP decodes the original file (its n is the video's full frame count).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from msta_jax.data import transforms


def fixed(num_stored: int, num_frames: int, clips: int, rng: np.random.Generator) -> list[np.ndarray]:
  del rng
  return [transforms.segment_indices(num_stored, num_frames, offset=(c + 0.5) / clips) for c in range(clips)]


def _mmaction_train_clip(n: int, t: int, rng: np.random.Generator) -> np.ndarray:
  """mmaction2 SampleFrames._get_train_clips with clip_len 1, frame_interval 1, num_clips t; then `% n`."""
  avg = n // t
  if avg > 0:
    offsets = np.arange(t) * avg + rng.integers(avg, size=t)
  elif n > max(t, 1):  # Unreachable with clip_len 1 (avg == 0 means n < t); kept as mmaction has it.
    offsets = np.sort(rng.integers(n, size=t))
  else:
    offsets = np.around(np.arange(t) * (n / t))
  return np.mod(offsets.astype(np.int64), n)


def vifi_multiview(num_stored: int, num_frames: int, clips: int, rng: np.random.Generator) -> list[np.ndarray]:
  if clips == 1:
    return fixed(num_stored, num_frames, 1, rng)
  return [_mmaction_train_clip(num_stored, num_frames, rng) for _ in range(clips)]


SAMPLERS: dict[str, Callable[[int, int, int, np.random.Generator], list[np.ndarray]]] = {
    'fixed': fixed, 'vifi_multiview': vifi_multiview}


def clip_indices(sampler: str, num_stored: int, num_frames: int, clips: int, *, seed: int,
                 index: int) -> list[np.ndarray]:
  """The C index arrays (T frames each) of video `index` under `sampler`."""
  if sampler not in SAMPLERS:
    raise ValueError(f'config.eval.test_sampler={sampler!r}; allowed: {sorted(SAMPLERS)}')
  if num_stored < 1:
    raise ValueError('a clip with no frames cannot be sampled')
  return SAMPLERS[sampler](num_stored, num_frames, clips, np.random.default_rng((seed, index)))
