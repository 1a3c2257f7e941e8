"""Writing files so that a reader never sees half of one: the one atomic write of the package.

A run killed mid-write (a description generator saving after every class, a protocol runner whose
`results.json` marks a finished member, a split-file fetch) leaves either the old file or the new one.
On an object store (a `gs://` URL, msta_jax.paths) the file is one object write, which the store
commits whole (it has no rename to build on). Imports nothing of msta_jax: every floor may use it.
"""
from __future__ import annotations

import json
import os
from typing import Any

from etils import epath


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
  """Writes `data` to `path` through a temporary file in the same folder and an atomic rename;
  creates the folder. Text is written as UTF-8. On any failure `path` is as it was and the temporary
  file is gone. A URL path is written as one object."""
  path = os.fspath(path)
  if '://' in path:  # msta_jax.paths.is_url (this module imports nothing of msta_jax).
    url = epath.Path(path)
    url.parent.mkdir(parents=True, exist_ok=True)
    url.write_bytes(data.encode('utf-8') if isinstance(data, str) else data)
    return
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = f'{path}.tmp.{os.getpid()}'
  try:
    with open(tmp, 'wb') as f:
      f.write(data.encode('utf-8') if isinstance(data, str) else data)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str | os.PathLike, obj: Any, **dump_kwargs: Any) -> None:
  """`json.dumps(obj, **dump_kwargs)` written atomically, ending with a newline."""
  write_atomic(path, json.dumps(obj, **dump_kwargs) + '\n')
