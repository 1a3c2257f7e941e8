"""Paths that may be URLs (gs://bucket/run): etils.epath for them, never os.path.abspath.

`os.path.abspath('gs://b/run')` is '<cwd>/gs:/b/run', a local directory: each worker of a pod would
write its checkpoint shards to its own disk. `resolve` leaves a URL as it is and makes a local path
absolute (with ~ expanded), so every consumer (Orbax, TFDS, the writers) gets the same location.

`file://` URLs name local files: epath (and so Orbax) has no `file://` backend (`epath.Path('file:///x')`
raises KeyError), so `local_or_url` turns them into the local path at the entry points and the rest
of the run sees an ordinary local directory (with its run.lock and atomic renames).
"""
from __future__ import annotations

import io
import os

from etils import epath

FILE_SCHEME = 'file://'


def is_url(path: str | os.PathLike) -> bool:
  return '://' in os.fspath(path)


def local_or_url(path: str | os.PathLike) -> str:
  """`path` as a string, a file:// URL as its local path (file:///tmp/run -> /tmp/run); the rest unchanged."""
  path = os.fspath(path)
  if path.startswith(FILE_SCHEME):
    local = path[len(FILE_SCHEME):]
    if not local.startswith('/'):  # file://host/x: a host name, which no local path has.
      raise ValueError(f'{path}: a file:// URL needs an absolute path (file:///dir/run), without a host')
    return local
  return path


def resolve(path: str | os.PathLike) -> epath.Path:
  """An epath.Path: URLs unchanged (file:// as its local path), local paths absolute with ~ expanded."""
  path = local_or_url(path)
  if not is_url(path):
    return epath.Path(os.path.abspath(os.path.expanduser(path)))
  try:
    return epath.Path(path)
  except KeyError:  # epath's registry of schemes.
    raise ValueError(f'{path}: unsupported URL scheme; use a local path, file:///..., gs://, s3://, az:// '
                     'or hf://') from None


def readable(path: str | os.PathLike) -> str | io.BytesIO:
  """What a reader that takes a file name or a file object (zipfile, np.load) opens: a local path as
  it is (read in place), a URL's bytes in memory (an object store's reads are remote round trips)."""
  return io.BytesIO(resolve(path).read_bytes()) if is_url(local_or_url(path)) else local_or_url(path)
