"""How complete a built dataset is: per split, the videos listed, stored, missing and quarantined, and
the videos each class actually has; the threshold above which a dataset counts as partial.

The video_folder builder writes these counts into each split's metadata; the trainer copies them into
results.json (`data`, docs/results.md) and refuses a partial dataset unless config.data.allow_partial.
"""
from __future__ import annotations

from typing import Any, Mapping

# Default of `build --max_missing` and the trainer's limit: above this fraction of a split's listed videos
# missing or unusable, a dataset is partial (K400/K600 copies always lack some; their users opt in).
MAX_MISSING = 0.01
COUNT_KEYS = ('listed', 'stored', 'missing', 'quarantined')


def split_counts(split_meta: Mapping[str, Any], classes: list[str], stored: int,
                 training: bool = False) -> dict[str, Any]:
  """The counts of one opened split. Datasets without build counts (the synthetic set: every listed
  example is generated) count as complete: listed = stored. A training split also names the classes
  with fewer stored videos than the most (the shots each class actually has, where K was meant)."""
  out: dict[str, Any] = {k: int(split_meta[k]) for k in COUNT_KEYS if k in split_meta}
  if 'listed' not in out:
    out = {'listed': stored, 'stored': stored, 'missing': 0, 'quarantined': 0}
  out.setdefault('missing', 0)  # Builds before video_folder 1.1.0 counted missing videos as quarantined.
  out['unusable_fraction'] = (out['listed'] - out['stored']) / max(out['listed'], 1)
  per_class = split_meta.get('stored_per_class')
  if per_class:
    top = max(per_class)
    out['stored_per_class'] = {'min': min(per_class), 'max': top}
    if training:
      out['classes_short'] = {c: n for c, n in zip(classes, per_class) if n < top}
  return out


def _split_set_name(src) -> str | None:
  record = src.dataset_metadata.get('split_set')
  return record.get('name') if isinstance(record, Mapping) else None


def dataset_report(train, val, tests: Mapping[str, Any], *, allow_partial: bool,
                   limit: float = MAX_MISSING) -> dict[str, Any]:
  """results.json's `data` (docs/results.md): the counts of the opened splits (pipeline.SplitSource or
  None), `splits: {train, val, test: {name: ...}}`, and whether the dataset is partial or a class subset.
  Raises PartialDatasetError on a partial dataset unless allow_partial."""
  roles = {'train': train, 'val': val, **{f'test {name}': s for name, s in tests.items()}}
  roles = {role: s for role, s in roles.items() if s is not None}
  found = {role: split_counts(s.metadata, s.classes, len(s), role == 'train') for role, s in roles.items()}
  over = {role: c for role, c in found.items() if c['unusable_fraction'] > limit}
  subset = any(_split_set_name(s) == 'subset' for s in roles.values())
  if over and not allow_partial:
    raise PartialDatasetError('; '.join(
        f'split {roles[role].split!r} of {roles[role].path}: {c["listed"] - c["stored"]} of '
        f'{c["listed"]} listed videos not stored ({c["missing"]} missing, {c["quarantined"]} quarantined)'
        for role, c in over.items()) + f'. That is more than {limit:g}: results would not be comparable with '
        'the protocol. Fix the videos and rebuild, or pass --config.data.allow_partial=True to train anyway '
        '(results.json then says partial).')
  splits = {role: c for role, c in found.items() if not role.startswith('test ')}
  splits['test'] = {name: found[f'test {name}'] for name in tests if f'test {name}' in found}
  return {'splits': splits, 'partial': bool(over), 'partial_splits': sorted(over), 'subset': subset,
          'partial_limit': limit, 'comparable_with_paper': not over and not subset}


class PartialDatasetError(ValueError):
  """The dataset misses more than MAX_MISSING of a split and the config does not allow that."""


def marker(data: Mapping[str, Any] | None) -> str:
  """'' for a complete, standard dataset; else what it is not ('subset', 'partial' or both), for labels."""
  data = data or {}
  return ', '.join(w for w, on in (('subset', data.get('subset')), ('partial', data.get('partial'))) if on)


def describe(data: Mapping[str, Any] | None) -> str:
  """One line of a results.json `data` for tables: stored of listed per split, with what is short."""
  splits = dict((data or {}).get('splits') or {})
  tests = splits.pop('test', {})
  parts = []
  for role, c in list(splits.items()) + [(f'test {n}', c) for n, c in tests.items()]:
    part = f'{role} {c["stored"]}/{c["listed"]}'
    if c['stored'] < c['listed']:
      part += f' ({c["missing"]} missing, {c["quarantined"]} quarantined)'
    if c.get('classes_short'):
      part += f', {len(c["classes_short"])} classes short of {c["stored_per_class"]["max"]}'
    parts.append(part)
  mark = marker(data)
  return '; '.join(parts) + (f' [{mark}]' if mark else '')
