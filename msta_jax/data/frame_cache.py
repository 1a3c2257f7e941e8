"""Decoded training frames kept in memory (`config.data.decoded_cache_mb`): a small split decodes once.

A few-shot split or the synthetic set is read again every epoch. Decoding its frames is then most of the
loader's work (a 32x32 PNG costs ~0.15 ms in PIL, nearly all of it Python under the GIL), and on a small
host that work competes with the training step for the cores and the GIL. The cache keeps each decoded
frame as a read-only uint8 [H, W, 3] array, keyed by (storage index, frame index), up to a byte budget.
It fills first come and never evicts: a split larger than the budget is partly cached, and nothing is
decoded twice that fits. The pixels are the decoder's own, so batches are bit-identical with the cache on
or off (tests/data/frame_cache_test.py). Reading threads share one cache; each grain worker process holds
its own copy, so the budget is per input process.
"""
from __future__ import annotations

import threading

import numpy as np

from msta_jax.data import transforms


class FrameCache:
  """(storage index, frame index) -> decoded frame, within `max_bytes`."""

  def __init__(self, max_bytes: int):
    if max_bytes < 0:
      raise ValueError(f'config.data.decoded_cache_mb must be >= 0, got {max_bytes / 2**20:g}')
    self.max_bytes = max_bytes
    self.bytes = 0
    self.hits = 0
    self.misses = 0
    self._frames: dict[tuple[int, int], np.ndarray] = {}
    self._lock = threading.Lock()

  def frames(self, index: int, encoded: list[bytes], picks: np.ndarray) -> list[np.ndarray]:
    """The decoded frames `picks` of the clip at storage `index` (its encoded frames: `encoded`)."""
    out = []
    for i in picks.tolist():
      frame = self._frames.get((index, i))  # A dict read is atomic under the GIL: no lock to read.
      if frame is None:
        frame = np.asarray(transforms.decode_frame(encoded[i]))  # The loader's decoder, as an array.
        frame.flags.writeable = False      # Shared by every later clip that picks it.
        self._add((index, i), frame)
        self.misses += 1
      else:
        self.hits += 1
      out.append(frame)
    return out

  def describe(self) -> str:
    return (f'{len(self._frames)} frames in {self.bytes / 2**20:.1f} of {self.max_bytes / 2**20:g} MiB; '
            f'{self.hits} reads from memory, {self.misses} decodes (this process)')

  def __getstate__(self) -> dict:
    """Pickled into a grain worker process: the budget travels, the frames and the lock do not."""
    return {'max_bytes': self.max_bytes}

  def __setstate__(self, state: dict) -> None:
    self.__init__(state['max_bytes'])

  def _add(self, key: tuple[int, int], frame: np.ndarray) -> None:
    with self._lock:
      if key not in self._frames and self.bytes + frame.nbytes <= self.max_bytes:
        self._frames[key] = frame
        self.bytes += frame.nbytes
