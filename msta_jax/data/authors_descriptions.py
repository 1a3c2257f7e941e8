"""The MSTA authors' description files, fed to a run as they are: `authors:SPATIAL.json,TEMPORAL.json`.

The authors published (never shipped here) one file per kind, dataset and N:
`{2,4,8}_{s,t}_description_{hmdb,k400,k600,ssv2,ucf_101}.json`, each keyed by class INDEX as a string,
`{"0": ["sentence", ...], "1": [...], ...}` with N sentences per class. Index i is class i of the
dataset's label list, which for HMDB51, UCF101, SSv2 and K400 is our shipped class list's order
(the ViFi-CLIP label csvs). `load` maps indices to our names and checks that both files cover exactly
the classes of that list, with the same N (2, 4 or 8) everywhere; the result is the package's
descriptions format ({name: {'spatial': [...], 'temporal': [...]}}).

    --config.data.descriptions=authors:/data/etl/2_s_description_hmdb.json,/data/etl/2_t_description_hmdb.json
"""
from __future__ import annotations

import json
from collections.abc import Sequence

PREFIX = 'authors:'
ALLOWED_N = (2, 4, 8)


def is_spec(source: str) -> bool:
  return source.startswith(PREFIX)


def _read(path: str, kind: str, class_names: Sequence[str]) -> dict[str, list[str]]:
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'config.data.descriptions: {kind} file {path!r} does not exist') from e
  n = len(class_names)
  if not isinstance(data, dict) or sorted(data, key=lambda k: (len(k), k)) != [str(i) for i in range(len(data))]:
    raise ValueError(f'{path}: expected the authors\' format {{"0": [sentences], "1": ...}} keyed by class index')
  if len(data) != n:
    raise ValueError(f'{path}: {len(data)} classes, but the class list has {n}: these descriptions are for '
                     'another dataset (or another class list)')
  counts = {len(v) if isinstance(v, list) and all(isinstance(s, str) for s in v) else -1 for v in data.values()}
  if len(counts) != 1 or counts.pop() not in ALLOWED_N:
    raise ValueError(f'{path}: every class needs the same number N of sentences, N in {ALLOWED_N} '
                     f'(found {sorted({len(v) if isinstance(v, list) else -1 for v in data.values()})})')
  return {class_names[i]: list(data[str(i)]) for i in range(n)}


def load(source: str, class_names: Sequence[str]) -> dict[str, dict[str, list[str]]]:
  """`authors:SPATIAL.json,TEMPORAL.json` -> {class name: {'spatial': [...], 'temporal': [...]}}."""
  paths = source[len(PREFIX):].split(',')
  if len(paths) != 2 or not all(p.strip() for p in paths):
    raise ValueError(f'config.data.descriptions={source!r}: expected authors:SPATIAL.json,TEMPORAL.json')
  spatial, temporal = (_read(p.strip(), k, class_names) for p, k in zip(paths, ('spatial', 'temporal')))
  n_s, n_t = len(next(iter(spatial.values()))), len(next(iter(temporal.values())))
  if n_s != n_t:
    raise ValueError(f'config.data.descriptions={source!r}: {n_s} spatial but {n_t} temporal sentences per class')
  return {name: {'spatial': spatial[name], 'temporal': temporal[name]} for name in class_names}
