"""The class lists shipped with the package (assets/classes/<dataset>.json, index order)."""
from __future__ import annotations

import functools
import json
import os

CLASSES_DIR = os.path.join(os.path.dirname(__file__), 'assets', 'classes')
DATASETS = ('hmdb51', 'ucf101', 'ssv2', 'k400', 'k600')


@functools.lru_cache(maxsize=None)
def _load(path: str) -> tuple[str, ...]:
  try:
    with open(path, encoding='utf-8') as f:
      names = json.load(f)
  except (ValueError, RecursionError) as e:  # Not JSON, not UTF-8, or nested beyond the parser.
    raise ValueError(f'{path}: not a readable JSON class list ({type(e).__name__}: {e})') from e
  if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
    raise ValueError(f'{path}: a class list must be a JSON list of strings')
  return tuple(names)


def names(dataset_or_path: str) -> list[str]:
  """Class names in label-index order: a shipped dataset's list, or a JSON list file."""
  if os.path.isfile(dataset_or_path):
    return list(_load(os.path.abspath(dataset_or_path)))
  path = os.path.join(CLASSES_DIR, f'{dataset_or_path}.json')
  if not os.path.exists(path):
    raise KeyError(f'no shipped class list for dataset {dataset_or_path!r} and no such file; '
                   f'shipped: {DATASETS}')
  return list(_load(path))
