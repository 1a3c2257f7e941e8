"""Fetching and verifying the pinned split files (`python -m msta_jax.tools.splits fetch | verify`).

The split-set model (data/splits.py) reads files that are already on disk and checks each read against
its pin; this is the maintenance around it: download the pinned files of ViFi-CLIP's and Open-VCLIP's
repositories (or copy them from a clone), verify every file of a manifest, derive the val-only K600
lists. The only module of the package that opens a network connection for split files.
"""
from __future__ import annotations

import dataclasses
import os
import urllib.error
import urllib.request
from typing import Callable

from msta_jax import files
from msta_jax.data import splits

DEFAULT_BASE_URL = 'https://raw.githubusercontent.com'


@dataclasses.dataclass(frozen=True)
class FileStatus:
  path: str
  ok: bool
  detail: str


def verify_file(f: splits.PinnedFile) -> FileStatus:
  try:
    return FileStatus(f.path, True, f'ok ({len(f.read())} bytes)')
  except splits.SplitFileError as e:
    return FileStatus(f.path, False, str(e))


def verify(manifest: splits.Manifest) -> list[FileStatus]:
  """Checks every file of a manifest against its pin, without touching the network."""
  return [verify_file(manifest.file(rel)) for rel in manifest.data['files']]


def fetch(splits_dir: str | None = None, *, pinned: tuple[str, ...] = splits.PINNED,
          base_url: str = DEFAULT_BASE_URL, local_copy: str | None = None, timeout: float = 60.0,
          log: Callable[[str], None] = print) -> list[FileStatus]:
  """Downloads every pinned file (or copies it from `local_copy`, a clone of the source repository),
  verifies each against its git blob id and sha256, and writes the derived lists (val_only K600).

  Files already present and verified are kept. A file that fails is never written.
  Raises SplitFileError listing every failure, after trying all files.
  """
  if local_copy and len(pinned) != 1:
    raise ValueError(f'a local copy holds one repository: pass one pinned set (from {splits.PINNED}), '
                     f'not {pinned}')
  statuses = []
  for name in pinned:
    manifest = splits.load_pinned(name, splits_dir)
    src = manifest.data['source']
    # Derived files last: they are made from fetched ones.
    for rel, pin in sorted(manifest.data['files'].items(), key=lambda kv: 'derived_from' in kv[1]):
      f = manifest.file(rel)
      how = rel
      try:
        if f.exists() and verify_file(f).ok:
          statuses.append(FileStatus(f.path, True, 'ok (already present)'))
          continue
        if 'derived_from' in pin:
          origin = manifest.file(pin['derived_from'])
          data = splits.convert_openvclip_csv(origin.read().decode('utf-8'), origin.path).encode()
          how = f'converted from {pin["derived_from"]}'
        elif local_copy:
          how = os.path.join(local_copy, rel)
          with open(how, 'rb') as fh:
            data = fh.read()
        else:
          how = f'{base_url.rstrip("/")}/{src["repo"]}/{src["commit"]}/{rel}'
          with urllib.request.urlopen(how, timeout=timeout) as resp:
            data = resp.read()
        splits.check_pin(data, pin, how)
        files.write_atomic(f.path, data)
        statuses.append(FileStatus(f.path, True, f'ok ({how})'))
        log(f'fetched {rel} ({len(data)} bytes)')
      except (splits.SplitFileError, OSError, urllib.error.URLError) as e:
        where = '' if isinstance(e, splits.SplitFileError) else f' ({how})'  # Pin errors name it already.
        statuses.append(FileStatus(f.path, False, f'{rel}: {e}{where}'))
        log(f'FAILED {statuses[-1].detail}')
  failed = [s for s in statuses if not s.ok]
  if failed:
    raise splits.SplitFileError(f'{len(failed)} of {len(statuses)} pinned files failed:\n' +
                         '\n'.join(f'  {s.detail}' for s in failed))
  return statuses
