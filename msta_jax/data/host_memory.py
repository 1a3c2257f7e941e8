"""Keeps freed host memory in the process instead of handing it back to the kernel after every clip.

Each training clip allocates and frees arrays of 1-5 MB (decoded frames, the planar colour buffers, the
clip) and each batch one of 10-40 MB. glibc's malloc serves such sizes with fresh mmap'd or trimmed
pages that the kernel must fault in again on first touch: ~1 ms per 4.8 MB array on this machine.
Raising glibc's mmap and trim thresholds lets freed blocks be reused as they are: on the benchmark's
8x224 clips, 3% less CPU per clip with loader threads and 8% in worker processes (BENCHMARKS.md, "CPU
per clip"). The values are the same bits either way; the cost is up to TRIM_THRESHOLD of idle heap per
malloc arena.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h parameter numbers.
MMAP_THRESHOLD = 32 << 20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit): blocks below it come from the heap.
TRIM_THRESHOLD = 128 << 20
_ENV = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')


def keep_freed_memory() -> bool:
  """Sets the thresholds in this process (glibc only; a no-op elsewhere, or where the environment sets
  either threshold itself). Returns whether they were set."""
  if any(k in os.environ for k in _ENV):
    return False
  name = ctypes.util.find_library('c')
  try:
    mallopt = ctypes.CDLL(name).mallopt if name else None
  except (OSError, AttributeError):
    mallopt = None
  if mallopt is None:
    return False
  return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
