"""The `generated` split set: the protocol shapes, built from the split files each dataset ships.

`python -m msta_jax.tools.splits generate --dataset=NAME --official=DIR` writes
<splits_dir>/generated/<dataset>/ (lists, class lists, manifest.json with every file's sha256). The
output depends only on the official files, never on file order or the Python version: every pick sorts
by splits.rank_key(dataset, purpose, item) and keeps the smallest. Procedure, version 1:

- Class lists: `full` is the class-list asset (assets/classes/<dataset>.json), official names matched
  case-insensitively with `_` read as a space. `base` is the ceil(n/2) classes with the smallest
  rank_key(dataset, 'base_novel', name), `novel` the rest; both keep full-list order, ids are local.
- official/: the dataset's own splits in our `path label` form (full ids): HMDB and UCF train{1,2,3},
  test{1,2,3}; SSv2, K400 train and val; K600 val. Video paths follow the ViFi-CLIP layout (one flat
  folder for HMDB and UCF, `<id>.webm`, Kinetics `train/` and `val/` + `<ytid>_<start6>_<end6>.mp4`), so
  one local copy serves both split sets.
- Few-shot (HMDB, UCF, SSv2): K = 2/4/8/16 per class from training split 1 (SSv2: train), purpose
  'few_shot'. The sets are nested (the 2 shots are in the 4-shot set); test: split 1 test (SSv2: val).
- Base-to-novel (HMDB, UCF, SSv2, K400): base_train = the base classes of training split 1 (SSv2, K400:
  train); fs_base_s{1,2,3} = 16 per base class, purpose 'base2novel/seed{S}'; base_val and novel_val =
  test split 1 (SSv2, K400: val) of each half.
- Zero-shot: HMDB and UCF test splits 1-3. K600 split N: of the 220 classes new in K600 (K600 names not in
  K400, less 12 K400 classes K600 renamed), the 160 with the smallest rank_key('k600', 'zero_shot/splitN',
  name), alphabetical like ER-ZSAR/ViFi-CLIP, with every K600 validation video (the `val_only` form).
  K400 (zero-shot source and full supervision): train and val.
- Held-out model-selection lists are derived by splits.py, the same way for every split set.

A class subset (`classes=[...]`, `--classes=A,B,...` on the command line) follows the same procedure on
the chosen classes only (their order in the full list, ids local to the subset; `shots` may be fewer
than 2/4/8/16 for small copies) and is written as the split set `subset` (<splits_dir>/subset/<dataset>),
whose datasets are named `<dataset>_subset_<protocol>`: results on it say `subset` and are never put
beside the paper's.
"""
from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
import shutil

from msta_jax.data import classes
from msta_jax.data import splits

PROCEDURE = 'msta_jax generated splits, version 1'
SHOTS = (2, 4, 8, 16)
B2N_SHOTS = 16
SEEDS = (1, 2, 3)
K600_ZS_CLASSES = 160
# K600 names of K400 classes that Kinetics-600 renamed (K400 name in the comment): not new classes.
K600_RENAMED = (
    'changing wheel (not on bike)',  # changing wheel
    'cooking sausages (not on barbeque)',  # cooking sausages
    'dyeing hair',  # dying hair
    'hugging (not baby)',  # hugging
    'inflating balloons',  # balloon blowing
    'making the bed',  # making bed
    'opening bottle (not wine)',  # opening bottle
    'passing american football (not in game)',  # passing American football (not in game)
    'person collecting garbage',  # garbage collecting
    'throwing ball (not baseball or American football)',  # throwing ball
    'tying necktie',  # tying tie
    'waking up',  # baby waking up
)
Named = list[tuple[str, str]]  # [(relative video path, class name as the official file writes it)]


def _norm(name: str) -> str:
  return ' '.join(name.replace('_', ' ').lower().split())


def _find(official: str, pattern: str) -> list[str]:
  """Files matching `pattern` anywhere under `official` (releases nest them in varying folders)."""
  return sorted(glob.glob(os.path.join(glob.escape(official), '**', pattern), recursive=True))


def _one(official: str, *names: str) -> str:
  for name in names:
    hits = _find(official, name)
    if hits:
      return hits[0]
  raise FileNotFoundError(f'--official={official}: no {" or ".join(names)} in it or its subfolders; '
                          'see docs/splits.md for the files each dataset ships')


def _read(path: str) -> str:
  with open(path, encoding='utf-8-sig') as f:
    return f.read().replace('\r', '')


# ---------------------------------------------------------------------------------------------------
# Official formats (protocols.md, last section) -> {split name: [(path, class name)]}.


def read_hmdb51(official: str) -> tuple[dict[str, Named], list[str]]:
  """testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt: `<video>.avi <tag>`, 1 train, 2 test."""
  files = [f for f in _find(official, '*_test_split*.txt')
           if re.fullmatch(r'.+_test_split[123]\.txt', os.path.basename(f))]
  if not files:
    raise FileNotFoundError(f'--official={official}: no <class>_test_split{{1,2,3}}.txt files (HMDB51 '
                            'testTrainMulti_7030_splits)')
  out: dict[str, Named] = {f'{s}{n}': [] for s in ('train', 'test') for n in (1, 2, 3)}
  for path in files:
    cls, n = re.fullmatch(r'(.+)_test_split([123])\.txt', os.path.basename(path)).groups()
    for i, line in enumerate(_read(path).split('\n'), 1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != 2 or fields[1] not in ('0', '1', '2'):
        raise ValueError(f'{path}:{i}: expected `<video>.avi <0|1|2>`, got {line!r}')
      if fields[1] != '0':
        out[('train' if fields[1] == '1' else 'test') + n].append((fields[0], cls))
  return out, files


def read_ucf101(official: str) -> tuple[dict[str, Named], list[str]]:
  """ucfTrainTestlist: classInd.txt, trainlist0N (`<Class>/<video> <index>`), testlist0N (no index)."""
  ind_path = _one(official, 'classInd.txt')
  index = {}
  for line in _read(ind_path).split('\n'):
    if line.strip():
      i, name = line.split()
      index[i] = name
  out: dict[str, Named] = {}
  files = [ind_path]
  for n in (1, 2, 3):
    for kind in ('train', 'test'):
      path = _one(official, f'{kind}list0{n}.txt')
      files.append(path)
      rows = out.setdefault(f'{kind}{n}', [])
      for i, line in enumerate(_read(path).split('\n'), 1):
        fields = line.split()
        if not fields:
          continue
        folder, _, video = fields[0].rpartition('/')
        cls = index.get(fields[1]) if kind == 'train' else folder
        if cls is None or len(fields) != (2 if kind == 'train' else 1):
          raise ValueError(f'{path}:{i}: unexpected line {line!r} (class index not in {ind_path}?)')
        rows.append((video, cls))
  return out, files


def read_ssv2(official: str) -> tuple[dict[str, Named], list[str]]:
  """labels.json, train.json, validation.json; the class is the template without its brackets."""
  labels_path = _one(official, 'labels.json')
  with open(labels_path) as f:
    known = set(json.load(f))
  out: dict[str, Named] = {}
  files = [labels_path]
  for split, name in (('train', 'train.json'), ('val', 'validation.json')):
    path = _one(official, name)
    files.append(path)
    with open(path) as f:
      items = json.load(f)
    rows = out.setdefault(split, [])
    for item in items:
      cls = item['template'].replace('[', '').replace(']', '')
      if cls not in known:
        raise ValueError(f'{path}: video {item["id"]} has template {item["template"]!r}, not a class '
                         f'of {labels_path}')
      rows.append((f'{item["id"]}.webm', cls))
  return out, files


def read_kinetics(official: str, splits_wanted: tuple[str, ...]) -> tuple[dict[str, Named], list[str]]:
  """train.csv / validate.csv with columns label,youtube_id,time_start,time_end,split."""
  out: dict[str, Named] = {}
  files = []
  for split in splits_wanted:
    path = _one(official, *(('train.csv',) if split == 'train' else ('validate.csv', 'val.csv')))
    files.append(path)
    with open(path, newline='', encoding='utf-8-sig') as f:
      reader = csv.DictReader(f)
      missing = {'label', 'youtube_id', 'time_start', 'time_end'} - set(reader.fieldnames or ())
      if missing:
        raise ValueError(f'{path}: missing columns {sorted(missing)}')
      out[split] = [(f'{split}/{r["youtube_id"]}_{int(float(r["time_start"])):06d}_'
                     f'{int(float(r["time_end"])):06d}.mp4', r['label']) for r in reader]
  return out, files


# ---------------------------------------------------------------------------------------------------
# Building.


def to_ids(rows: Named, classes: list[str], source: str) -> list[splits.Entry]:
  """Maps official class names to ids of `classes`; every class must have a video, no path twice."""
  index = {_norm(c): i for i, c in enumerate(classes)}
  unknown = sorted({c for _, c in rows if _norm(c) not in index})
  if unknown:
    raise ValueError(f'{source}: classes not in the class list: {unknown[:5]}')
  out = sorted({(p, index[_norm(c)]) for p, c in rows}, key=lambda r: (r[1], r[0]))
  seen: dict[str, int] = {}
  for p, l in out:
    if seen.setdefault(p, l) != l:
      raise ValueError(f'{source}: {p} is listed under {classes[seen[p]]!r} and {classes[l]!r}')
  empty = sorted(set(range(len(classes))) - {l for _, l in out})
  if empty:
    raise ValueError(f'{source}: no videos of {[classes[i] for i in empty[:5]]}: is --official complete?')
  return out


def pick(rows: list[splits.Entry], k: int, dataset: str, purpose: str, source: str,
         names: list[str]) -> list[splits.Entry]:
  """Exactly `k` per class (splits.select_per_class), or an error naming the short class."""
  counts: dict[int, int] = {}
  for _, l in rows:
    counts[l] = counts.get(l, 0) + 1
  short = [l for l, c in counts.items() if c < k]
  if short:
    raise ValueError(f'{source}: class {names[short[0]]!r} (id {short[0]}) has {counts[short[0]]} videos, '
                     f'fewer than {k} (a small copy or subset: pass --shots with smaller counts)')
  return splits.select_per_class(rows, k, dataset, purpose)


def base_novel(classes: list[str], dataset: str) -> tuple[list[str], list[str]]:
  ranked = sorted(classes, key=lambda c: splits.rank_key(dataset, 'base_novel', c))
  base = set(ranked[:math.ceil(len(classes) / 2)])
  return [c for c in classes if c in base], [c for c in classes if c not in base]


def k600_new_classes() -> list[str]:
  k400 = set(classes.names('k400'))
  return [c for c in classes.names('k600') if c not in k400 and c not in K600_RENAMED]


def _relabel(rows: list[splits.Entry], full: list[str], part: list[str]) -> list[splits.Entry]:
  local = {full.index(c): i for i, c in enumerate(part)}
  return [(p, local[l]) for p, l in rows if l in local]


def subset_classes(dataset: str, wanted: list[str]) -> list[str]:
  """The shipped names of `wanted` (matched like official names), in full-list order."""
  full = classes.names(dataset)
  index = {_norm(c): c for c in full}
  unknown = [w for w in wanted if _norm(w) not in index]
  if unknown:
    raise ValueError(f'--classes: {unknown} are not {dataset} classes (e.g. {full[:3]}; the full list is '
                     f'msta_jax/data/assets/classes/{dataset}.json)')
  if len(set(map(_norm, wanted))) < 2:
    raise ValueError('--classes: give at least 2 distinct classes')
  chosen = {_norm(w) for w in wanted}
  return [c for c in full if _norm(c) in chosen]


def generate(dataset: str, official: str, splits_dir: str | None = None, subset: list[str] | None = None,
             shots: tuple[int, ...] = SHOTS) -> str:
  """Builds the generated split set of `dataset` from the files under `official` (or, with `subset`,
  the `subset` split set of those classes, K in `shots`); returns its folder."""
  if dataset not in splits.DATASETS:
    raise ValueError(f'--dataset={dataset!r}: choose from {splits.DATASETS}')
  if not os.path.isdir(official):
    raise FileNotFoundError(f'--official={official} is not a directory')
  if not shots or any(k < 1 for k in shots):
    raise ValueError(f'--shots={shots}: give positive shot counts')
  full = classes.names(dataset) if subset is None else subset_classes(dataset, subset)
  b2n_shots = min(B2N_SHOTS, max(shots))
  lists: dict[str, tuple[list[splits.Entry] | list[str], str, str]] = {}  # rel -> (content, role, indexes)
  class_lists = {'full': 'classes/full.json'}
  lists['classes/full.json'] = (full, f'class list: all {len(full)} classes (full)', '')
  protocols = {}

  if dataset == 'hmdb51':
    named, inputs = read_hmdb51(official)
  elif dataset == 'ucf101':
    named, inputs = read_ucf101(official)
  elif dataset == 'ssv2':
    named, inputs = read_ssv2(official)
  else:
    named, inputs = read_kinetics(official, ('train', 'val') if dataset == 'k400' else ('val',))
  if subset is not None:
    kept = {_norm(c) for c in full}
    named = {split: [r for r in rows if _norm(r[1]) in kept] for split, rows in named.items()}
  official_ids = {}
  for split, rows in sorted(named.items()):
    official_ids[split] = to_ids(rows, full, f'{official} ({dataset} {split})')
    lists[f'official/{split}.txt'] = (official_ids[split], f'the official {split} split', 'full')
  train_name, test_name = ('train1', 'test1') if dataset in ('hmdb51', 'ucf101') else ('train', 'val')

  if dataset in ('hmdb51', 'ucf101', 'ssv2'):
    for k in shots:
      rows = pick(official_ids[train_name], k, dataset, 'few_shot', f'official/{train_name}.txt', full)
      lists[f'few_shot/train_{k}shot.txt'] = (rows, f'few-shot: training, {k} per class', 'full')
    protocols['few_shot'] = {
        'options': {'shots': list(shots)},
        'splits': {'train': {'list': 'few_shot/train_{shots}shot.txt', 'classes': 'full'},
                   'test': {'list': f'official/{test_name}.txt', 'classes': 'full'}},
        'heldout': {'source': f'official/{train_name}.txt', 'classes': 'full', 'mode': 'exclude'}}

  if dataset in ('hmdb51', 'ucf101', 'ssv2', 'k400'):
    base, novel = base_novel(full, dataset)
    class_lists.update(base='classes/base.json', novel='classes/novel.json')
    lists['classes/base.json'] = (base, f'class list: {len(base)} base classes (base)', '')
    lists['classes/novel.json'] = (novel, f'class list: {len(novel)} novel classes (novel)', '')
    base_train = _relabel(official_ids[train_name], full, base)
    lists['base2novel/base_train.txt'] = (base_train, 'base-to-novel: every base-class training video; '
                                          'held-out source', 'base')
    for seed in SEEDS:
      rows = pick(base_train, b2n_shots, dataset, f'base2novel/seed{seed}', 'base2novel/base_train.txt',
                  base)
      lists[f'base2novel/fs_base_s{seed}.txt'] = (rows, f'base-to-novel: training, seed {seed}, '
                                                  f'{b2n_shots} per base class', 'base')
    lists['base2novel/base_val.txt'] = (_relabel(official_ids[test_name], full, base),
                                        'base-to-novel: base-class evaluation', 'base')
    lists['base2novel/novel_val.txt'] = (_relabel(official_ids[test_name], full, novel),
                                         'base-to-novel: novel-class evaluation', 'novel')
    protocols['base2novel'] = {
        'options': {'seed': list(SEEDS)},
        'splits': {'train': {'list': 'base2novel/fs_base_s{seed}.txt', 'classes': 'base'},
                   'base_val': {'list': 'base2novel/base_val.txt', 'classes': 'base'},
                   'novel_val': {'list': 'base2novel/novel_val.txt', 'classes': 'novel'}},
        'heldout': {'source': 'base2novel/base_train.txt', 'classes': 'base', 'mode': 'exclude'}}

  if dataset in ('hmdb51', 'ucf101'):
    protocols['zero_shot'] = {'options': {'split': [1, 2, 3]},
                              'splits': {'test': {'list': 'official/test{split}.txt', 'classes': 'full'}}}
  if dataset == 'k400':
    protocols['zero_shot'] = protocols['supervised'] = {
        'options': {},
        'splits': {'train': {'list': 'official/train.txt', 'classes': 'full'},
                   'val': {'list': 'official/val.txt', 'classes': 'full'}},
        'heldout': {'source': 'official/train.txt', 'classes': 'full', 'mode': 'carve'}}
  if dataset == 'k600':
    new = [c for c in k600_new_classes() if c in full]
    for n in (1, 2, 3):
      ranked = sorted(new, key=lambda c: splits.rank_key('k600', f'zero_shot/split{n}', c))
      chosen = sorted(ranked[:K600_ZS_CLASSES])
      name = f'k600_zs_split{n}'
      class_lists[name] = f'classes/{name}.json'
      lists[f'classes/{name}.json'] = (chosen, f'class list: K600 zero-shot split {n} ({name})', '')
      lists[f'zero_shot/{name}_test.txt'] = (_relabel(official_ids['val'], full, chosen),
                                             f'zero-shot K600 test split {n} (val_only form)', name)
    protocols['zero_shot'] = {'options': {'split': [1, 2, 3]},
                              'splits': {'test': {'list': 'zero_shot/k600_zs_split{split}_test.txt',
                                                  'classes': 'k600_zs_split{split}'}}}
  return _write(dataset, official, splits_dir, lists, class_lists, protocols, inputs,
                'generated' if subset is None else 'subset')


def _write(dataset: str, official: str, splits_dir: str | None, lists: dict, class_lists: dict[str, str],
           protocols: dict, inputs: list[str], name: str = 'generated') -> str:
  """Writes into a fresh folder and swaps it in, so a failed run never leaves a half-made set."""
  dest = os.path.join(splits_dir or splits.default_splits_dir(), name, dataset)
  tmp = dest + '.partial'
  shutil.rmtree(tmp, ignore_errors=True)
  files = {}
  for rel, (content, role, indexes) in lists.items():
    if rel.startswith('classes/'):
      data = (json.dumps(content, indent=0, ensure_ascii=False) + '\n').encode()
      lines, classes, fmt = len(content), len(content), 'class_json'
    else:
      data = splits.format_list(content).encode()
      lines, classes, fmt = len(content), len({l for _, l in content}), 'list'
    os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
    with open(os.path.join(tmp, rel), 'wb') as f:
      f.write(data)
    files[rel] = {'git_blob': splits.git_blob_id(data), 'sha256': splits.sha256(data), 'bytes': len(data),
                  'lines': lines, 'classes': classes, 'format': fmt, 'role': role}
    if indexes:
      files[rel]['indexes'] = class_lists[indexes]
  inputs_pins = {}
  for path in inputs:
    with open(path, 'rb') as f:
      inputs_pins[os.path.relpath(path, official)] = splits.sha256(f.read())
  manifest = {'name': name, 'dataset': dataset,
              'source': {'procedure': PROCEDURE, 'official_inputs': inputs_pins},
              'files': dict(sorted(files.items())), 'class_lists': {dataset: class_lists},
              'protocols': {dataset: protocols}}
  if dataset == 'k600':
    manifest['k600_definition'] = 'val_only'
  with open(os.path.join(tmp, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1)
  shutil.rmtree(dest, ignore_errors=True)
  os.replace(tmp, dest)
  return dest
