"""Training records that cannot be read or decoded: an error naming the shard file and the example, or
(config.data.bad_records='skip') a deterministic replacement that is counted.

Why deterministic: the training stream must stay a function of (seed, position) for exact resume. A bad
record at storage index i is replaced by the first good record of i+1, i+2, ... (mod the split size),
decoded with the random draws position i would have had (the generator is rewound before each try).
That depends only on the data, the index and the seed, never on timing, worker count or which records
were prefetched, so a resumed run replays the same replacements. At most MAX_TRIES records are tried
per position, so a split of garbage stops with an error instead of spinning.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from absl import logging
from etils import epath

MODES = ('error', 'skip')
MAX_TRIES = 64
# Per-example fields a skip-mode transform adds (-1: the position's own record was good); the loader
# removes them from the batch and keeps (position's index, replacement) pairs in its state.
REPLACED, REPLACEMENT = 'bad_record_index', 'bad_record_replacement'


class BadRecordError(ValueError):
  """A training record failed to read or decode; the message names the shard file and the example."""


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise ValueError(f'config.data.bad_records must be one of {MODES}, not {mode!r}')
  return mode


def shard_of(source: Any, index: int) -> tuple[str, int] | None:
  """(shard file, record position in it) of a split's storage index, where the source says (TFDS's
  array_record source wraps array_record's, which maps keys to files)."""
  inner = getattr(source, 'data_source', source)
  locate = getattr(inner, '_reader_idx_and_position', None)
  if locate is None:
    return None
  try:
    reader, position = locate(index)
    return inner._read_instructions[reader].filename, int(position)
  except Exception:  # pylint: disable=broad-except  # Only a description; never hide the real error.
    return None


def shard_files(source: Any) -> list[str]:
  """Every shard file a split's source reads."""
  inner = getattr(source, 'data_source', source)
  return [ri.filename for ri in getattr(inner, '_read_instructions', [])]


def check_shards(path: str, split: str, source: Any) -> None:
  """A missing or empty shard is named when the split is opened, not at the first read of it."""
  for f in shard_files(source):
    shard = epath.Path(f)  # A gs:// dataset's shards are URLs.
    if not shard.is_file() or shard.stat().length == 0:
      what = 'missing' if not shard.exists() else 'empty'
      raise FileNotFoundError(f'{path}: split {split!r} shard {f} is {what}; rebuild the dataset '
                              '(--overwrite) or restore the file')


def video_of(dataset_path: str, split: str, example: dict[str, Any] | None) -> str | None:
  """The video the record stands for, where it parsed far enough to say: its stored path, or its line
  of the build's lists/<split>.txt."""
  if not example:
    return None
  if example.get('path'):
    return str(example['path'])
  if 'list_index' in example:
    listed = epath.Path(dataset_path) / 'lists' / f'{split}.txt'
    if listed.is_file():
      lines = listed.read_text(encoding='utf-8').splitlines()
      i = int(example['list_index'])
      if 0 <= i < len(lines):
        return lines[i]
  return None


def describe(dataset_path: str, split: str, source: Any, index: int, example: dict[str, Any] | None,
             error: BaseException) -> str:
  where = shard_of(source, index)
  shard = f'shard {where[0]} record {where[1]}' if where else f'dataset {dataset_path}'
  video = video_of(dataset_path, split, example)
  return (f'bad training record: split {split!r} example {index}' + (f' (video {video})' if video else '')
          + f' in {shard}: {type(error).__name__}: {error}')


def load(read: Callable[[int], Any], example: Callable[[Any, np.random.Generator, dict], dict[str, Any]],
         index: int, rng: np.random.Generator, *, mode: str, size: int, dataset_path: str, split: str,
         source: Any) -> dict[str, Any]:
  """One training example of storage index `index`: `example(record, rng, parsed)` of `read(index)`
  (it fills `parsed` with the record's fields as soon as it has them, for the message). 'error' raises
  BadRecordError naming file and example; 'skip' replaces the record as the module docstring says."""
  if mode == 'error':
    parsed: dict[str, Any] = {}
    try:
      return example(read(index), rng, parsed)
    except Exception as e:  # pylint: disable=broad-except  # Re-raised with the file and example.
      raise BadRecordError(describe(dataset_path, split, source, index, parsed, e)) from e
  start = rng.bit_generator.state
  first = None
  for k in range(min(MAX_TRIES, size)):
    j = (index + k) % size
    rng.bit_generator.state = start
    parsed = {}
    try:
      out = example(read(j), rng, parsed)
    except Exception as e:  # pylint: disable=broad-except  # Counted and replaced (mode 'skip').
      why = describe(dataset_path, split, source, j, parsed, e)
      first = first or why
      logging.warning('%s; skipped (config.data.bad_records=skip)', why)
      continue
    out[REPLACED], out[REPLACEMENT] = np.int32(index if k else -1), np.int32(j)
    return out
  raise BadRecordError(f'{first}; and the next {min(MAX_TRIES, size) - 1} records after it are bad too: '
                       'not skipping further (check the dataset)')


def take_replacements(batch: dict[str, np.ndarray]) -> list[list[int]]:
  """Removes the skip-mode fields from a batch; returns its (index, replacement) pairs."""
  replaced, replacement = batch.pop(REPLACED, None), batch.pop(REPLACEMENT, None)
  if replaced is None:
    return []
  return [[int(i), int(j)] for i, j in zip(replaced, replacement) if i >= 0]


def report(src: Any, mode: str, data_state: dict[str, Any] | None) -> dict[str, Any]:
  """results.json's `bad_records` (docs/results.md): the mode and every replaced example this process's
  loader fed to a step, with its shard file."""
  pairs = list((data_state or {}).get('bad_records', []))
  examples = []
  for i, j in pairs:
    where = shard_of(src.source, i) if src is not None else None
    examples.append({'index': i, 'replaced_by': j, 'shard': where[0] if where else None})
  return {'mode': mode, 'skipped': len(pairs), 'examples': examples}
