"""Paths that may be URLs (gs://bucket/run): etils.epath for them, never os.path.abspath.

`os.path.abspath('gs://b/run')` is '<cwd>/gs:/b/run', a local directory: each worker of a pod would
write its checkpoint shards to its own disk. `resolve` leaves a URL as it is and makes a local path
absolute (with ~ expanded), so every consumer (Orbax, the writers) gets the same location.
"""
from __future__ import annotations

import os

from etils import epath


def is_url(path: str | os.PathLike) -> bool:
  return '://' in os.fspath(path)


def resolve(path: str | os.PathLike) -> epath.Path:
  """An epath.Path: URLs unchanged, local paths absolute with ~ expanded."""
  path = os.fspath(path)
  return epath.Path(path if is_url(path) else os.path.abspath(os.path.expanduser(path)))
