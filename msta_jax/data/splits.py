"""Split sets: which videos each protocol trains on, selects models on and evaluates on.

A split set is a named family of `path label` lists with one layout for every dataset and protocol:
`vifi`, the lists ViFi-CLIP published (no licence: we ship only pins, assets/splits/vifi.json, and
`python -m msta_jax.tools.splits fetch` downloads and verifies them), and `generated`, our own lists built
deterministically from each dataset's official split files (splits_generate.py).

K600 zero-shot has two incompatible definitions, chosen by name: `mixed` (ViFi-CLIP: K600 train/val/test
videos of 160 new classes) and `val_only` (Open-VCLIP and FROSTER: every K600 validation video of the same
160 classes, pinned in assets/splits/val_only_k600.json). Accuracies on the two are not comparable.

Base-to-novel lists hold LOCAL ids into the base or the novel class list; every Split carries the class
list its ids index, so a build or an evaluation cannot mix them up.

Model selection never uses a test split: each training protocol gets a `heldout` split, up to
HELDOUT_PER_CLASS videos per class picked by `rank_key` from training videos that no list of the
protocol holds, or, where a protocol trains on a whole split (K400 zero-shot source, full supervision),
carved out of it. Without a source, `ProtocolSplits.model_selection` says the run keeps the last checkpoint.

  ss = get_split_set('vifi', 'hmdb51')
  ps = ss.splits('few_shot', shots=16)
  ps.train.entries()   # [(video path relative to the dataset folder, label id), ...]
  ps.record()          # store with every result: set, definition, lists and their hashes

Checking a local copy of the videos against a split set is splits_check.py; fetching and verifying the
pinned files is maintenance, done by msta_jax/tools/splits_fetch.py.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import functools
import hashlib
import io
import itertools
import json
import os
from typing import Any, Iterator, Mapping

# `subset`: generated lists of a chosen few classes (`splits generate --classes=...`): never the protocol.
SPLIT_SETS = ('vifi', 'generated', 'subset')
DATASETS = ('hmdb51', 'ucf101', 'ssv2', 'k400', 'k600')
PROTOCOLS = ('few_shot', 'base2novel', 'zero_shot', 'supervised')
# Pinned manifests shipped as assets; each is fetched into <splits_dir>/<name>/.
PINNED = ('vifi', 'val_only_k600')
# K600 zero-shot definition -> the pinned manifest that holds its lists (for the `vifi` split set).
K600_DEFINITIONS = {'mixed': 'vifi', 'val_only': 'val_only_k600'}
HELDOUT_PER_CLASS = 10
_ASSETS = os.path.join(os.path.dirname(__file__), 'assets', 'splits')
_CLI = 'python -m msta_jax.tools.splits'
Entry = tuple[str, int]


class SplitFileError(Exception):
  """A split or class-list file is missing, differs from its pin, or is malformed."""


def default_splits_dir() -> str:
  """$MSTA_SPLITS_DIR, else ~/.cache/msta_jax/splits: where fetch and generate write by default."""
  return os.environ.get('MSTA_SPLITS_DIR') or os.path.expanduser('~/.cache/msta_jax/splits')


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def git_blob_id(data: bytes) -> str:
  """Git's object id of a file: identifies files whose bytes we never saw (absent from the mirror)."""
  return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def rank_key(dataset: str, purpose: str, item: str) -> str:
  """The order every deterministic pick uses: smallest key first. Independent of file order and of
  Python's RNG, so the same picks can be reproduced anywhere from the documented string."""
  return hashlib.sha256(f'msta_jax/v1/{dataset}/{purpose}/{item}'.encode()).hexdigest()


def select_per_class(rows: list[Entry], k: int, dataset: str, purpose: str) -> list[Entry]:
  """Up to `k` rows per label, lowest `rank_key(dataset, purpose, path)` first, in the input order."""
  by_label = collections.defaultdict(list)
  for path, label in rows:
    by_label[label].append(path)
  keep = set()
  for paths in by_label.values():
    keep.update(sorted(paths, key=lambda p: rank_key(dataset, purpose, p))[:k])
  return [r for r in rows if r[0] in keep]


# ---------------------------------------------------------------------------------------------------
# Parsing.


def parse_list(text: str, source: str, folder_classes: list[str] | None = None, first_id: int = 0) -> list[Entry]:
  """Parses `<relative path> <label id>` lines; CRLF and a missing final newline are both published.

  With `folder_classes`, a line may be a path alone (UCF101's testlist0N.txt): its label is the class
  named by its first folder (`ApplyEyeMakeup/v_...avi`). Label ids count from `first_id` (1 for lists
  that go with a 1-based classInd.txt) and come back 0-based.
  """
  rows, seen = [], set()
  by_folder = {_folder_key(c): i for i, c in enumerate(folder_classes or [])}
  accepted = '`<path> <label id>`' + (' or `<class folder>/<path>`' if folder_classes else '')
  for i, line in enumerate(text.split('\n'), 1):
    fields = line.split()
    if not fields:
      continue
    if len(fields) == 1 and folder_classes:
      folder = fields[0].split('/')[0] if '/' in fields[0] else ''
      if _folder_key(folder) not in by_folder:
        raise SplitFileError(f'{source}:{i}: {fields[0]!r} has no label and its first folder {folder!r} names '
                             f'no class of the class list (e.g. {folder_classes[:3]}); expected {accepted}')
      label = by_folder[_folder_key(folder)]
    elif len(fields) != 2 or not fields[1].lstrip('-').isdigit():
      raise SplitFileError(f'{source}:{i}: expected {accepted}, got {line.strip()!r}' +
                           ('' if folder_classes else ' (a list without labels needs --classes)'))
    else:
      label = int(fields[1]) - first_id
    if fields[0] in seen:
      raise SplitFileError(f'{source}:{i}: {fields[0]} is listed twice')
    seen.add(fields[0])
    rows.append((fields[0], label))
  return rows


def _folder_key(name: str) -> str:
  return ''.join(name.replace('_', ' ').lower().split())


def format_list(rows: list[Entry]) -> str:
  return ''.join(f'{p} {l}\n' for p, l in rows)


CLASS_FORMATS = ('a JSON list of names, a {"0": name, ...} JSON object, an `id,name` CSV with that header, '
                 'or `<id> <name>` lines numbered from 0 or 1 (UCF101 classInd.txt)')


def parse_class_index(data: bytes, source: str) -> tuple[list[str], int]:
  """(names, first id) of a class file; classInd.txt-style files may count from 1 (their lists too)."""
  try:
    text = data.decode('utf-8-sig')
  except UnicodeDecodeError as e:
    raise SplitFileError(f'{source}: not UTF-8 text ({e}); class files are {CLASS_FORMATS}') from e
  if source.endswith('.csv') or text.lstrip()[:1] in ('[', '{'):
    return parse_class_list(data, source), 0
  names, first = [], None
  for i, line in enumerate(text.replace('\r', '').split('\n'), 1):
    fields = line.split(maxsplit=1)
    if not fields:
      continue
    if len(fields) != 2 or not fields[0].isdigit():
      raise SplitFileError(f'{source}:{i}: expected `<id> <name>`, got {line!r}; class files are {CLASS_FORMATS}')
    first = int(fields[0]) if first is None else first
    if first not in (0, 1) or int(fields[0]) != first + len(names):
      raise SplitFileError(f'{source}:{i}: ids must run from 0 or 1 in steps of 1; got {fields[0]} after '
                           f'{len(names)} names; class files are {CLASS_FORMATS}')
    names.append(fields[1].strip())
  if not names:
    raise SplitFileError(f'{source}: no classes; class files are {CLASS_FORMATS}')
  return names, first


def parse_class_list(data: bytes, source: str) -> list[str]:
  """Reads an `id,name` csv (ViFi-CLIP; names may hold commas), an index2cls json or a json list."""
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    raise SplitFileError(f'{source}: not UTF-8 text ({e})') from e
  if source.endswith('.csv'):
    rows = [r for r in csv.reader(io.StringIO(text.replace('\r', ''))) if r]
    if not rows or rows[0] != ['id', 'name']:
      raise SplitFileError(f'{source}: expected the header `id,name`')
    ids = [r[0] for r in rows[1:]]
    if ids != [str(i) for i in range(len(ids))]:
      raise SplitFileError(f'{source}: ids must run 0..{len(ids) - 1} in order')
    return [r[1] for r in rows[1:]]
  try:
    obj = json.loads(text)
  except json.JSONDecodeError as e:
    raise SplitFileError(f'{source}:{e.lineno}: not JSON ({e.msg}); class files are {CLASS_FORMATS}') from None
  except (ValueError, RecursionError) as e:
    raise SplitFileError(f'{source}: not a readable JSON class list ({type(e).__name__}: {e})') from e
  if isinstance(obj, dict):
    if sorted(obj) != sorted(str(i) for i in range(len(obj))):
      raise SplitFileError(f'{source}: keys must be "0".."{len(obj) - 1}"')
    return [obj[str(i)] for i in range(len(obj))]
  if not isinstance(obj, list) or not all(isinstance(n, str) for n in obj):
    raise SplitFileError(f'{source}: expected a JSON list of class names or an index->name object')
  return obj


def convert_openvclip_csv(text: str, source: str) -> str:
  """Open-VCLIP's `val/<class_dir>/<file>,<label>` -> our `val/<file> <label>`.

  The class folder goes so that one flat K600 copy (`val/<ytid>_<start>_<end>.mp4`, the layout of the
  ViFi-CLIP lists) serves both definitions; file names stay unique without it (checked).
  """
  rows, seen = [], set()
  for i, line in enumerate(text.split('\n'), 1):
    if not line.strip():
      continue
    path, _, label = line.strip().rpartition(',')
    parts = path.split('/')
    if len(parts) != 3 or not label.isdigit():
      raise SplitFileError(f'{source}:{i}: expected `<split>/<class_dir>/<file>,<label>`, got {line!r}')
    flat = f'{parts[0]}/{parts[2]}'
    if flat in seen:
      raise SplitFileError(f'{source}:{i}: {flat} appears under two class folders')
    seen.add(flat)
    rows.append((flat, int(label)))
  return format_list(rows)


# ---------------------------------------------------------------------------------------------------
# Manifests and pinned files.


@dataclasses.dataclass(frozen=True, eq=False)
class Manifest:
  """A pinned or generated set of files: their pins, class lists and the protocol layout."""
  name: str  # 'vifi', 'val_only_k600' or 'generated'.
  root: str  # Directory the relative paths resolve against.
  data: Mapping[str, Any] = dataclasses.field(repr=False)

  @property
  def source(self) -> str:
    s = self.data.get('source', {})
    return f"{s['repo']}@{s['commit']}" if 'repo' in s else s.get('procedure', self.name)

  def file(self, rel: str) -> PinnedFile:
    if rel not in self.data['files']:
      raise SplitFileError(f'{rel} has no pin in the {self.name} manifest')
    return PinnedFile(self, rel)

  def hint(self) -> str:
    if self.name == 'generated':
      return f'run `{_CLI} generate --dataset={self.data["dataset"]} --official=DIR`'
    if self.name == 'subset':
      return f'run `{_CLI} generate --dataset={self.data["dataset"]} --official=DIR --classes=A,B,...`'
    return f'run `{_CLI} fetch --splits_dir={os.path.dirname(self.root)}`'


def load_pinned(name: str, splits_dir: str | None = None) -> Manifest:
  """The shipped pins of `name` (one of PINNED), resolved under <splits_dir>/<name>."""
  if name not in PINNED:
    raise ValueError(f'unknown pinned set {name!r}; choose from {PINNED}')
  with open(os.path.join(_ASSETS, f'{name}.json')) as f:
    data = json.load(f)
  return Manifest(name, os.path.join(splits_dir or default_splits_dir(), name), data)


def load_generated(dataset: str, splits_dir: str | None = None, name: str = 'generated') -> Manifest:
  """The generated (or, name='subset', class-subset) split set of `dataset` under splits_dir/name."""
  root = os.path.join(splits_dir or default_splits_dir(), name, dataset)
  path = os.path.join(root, 'manifest.json')
  if not os.path.exists(path):
    classes = ' --classes=A,B,...' if name == 'subset' else ''
    raise SplitFileError(f'no {name} split set for {dataset}: {path} is missing; run '
                         f'`{_CLI} generate --dataset={dataset} --official=DIR{classes}` first')
  try:
    with open(path) as f:
      return Manifest(name, root, json.load(f))
  except (ValueError, RecursionError) as e:
    raise SplitFileError(f'{path}: not a readable manifest ({type(e).__name__}: {e})') from e


def check_pin(data: bytes, pin: Mapping[str, Any], where: str) -> None:
  """Raises SplitFileError naming the file and both hashes if `data` is not the pinned content."""
  problems = []
  for key, fn in (('sha256', sha256), ('git_blob', git_blob_id)):
    if pin.get(key) and fn(data) != pin[key]:
      problems.append(f'{key} {fn(data)} (pinned {pin[key]})')
  if problems:
    raise SplitFileError(f'{where} does not match its pin: {"; ".join(problems)}')


@dataclasses.dataclass(frozen=True)
class PinnedFile:
  """A file of a manifest; every read checks its pin."""
  manifest: Manifest
  rel: str

  @property
  def path(self) -> str:
    return os.path.join(self.manifest.root, self.rel)

  @property
  def pin(self) -> Mapping[str, Any]:
    return self.manifest.data['files'][self.rel]

  def exists(self) -> bool:
    return os.path.isfile(self.path)

  def read(self) -> bytes:
    if not self.exists():
      raise SplitFileError(f'{self.path} is missing ({self.manifest.name} set): {self.manifest.hint()}')
    with open(self.path, 'rb') as f:
      data = f.read()
    try:
      check_pin(data, self.pin, self.path)
    except SplitFileError as e:
      raise SplitFileError(f'{e}. It was edited or is another version: {self.manifest.hint()}') from None
    return data

  def rows(self) -> list[Entry]:
    """The parsed `path label` rows, verified; cached while the file is unchanged."""
    if not self.exists():
      self.read()  # Raises the error that says how to get the file.
    st = os.stat(self.path)
    return list(_read_rows(self.path, st.st_mtime_ns, st.st_size, self.pin.get('sha256'),
                           self.pin.get('git_blob')))


@functools.lru_cache(maxsize=32)
def _read_rows(path: str, mtime_ns: int, size: int, sha: str | None, blob: str | None) -> tuple[Entry, ...]:
  """Keyed by path, mtime, size and pin: the K400 train list is read by several splits of a run."""
  del mtime_ns, size
  with open(path, 'rb') as f:
    data = f.read()
  check_pin(data, {'sha256': sha, 'git_blob': blob}, path)
  return tuple(parse_list(data.decode('utf-8'), path))


# ---------------------------------------------------------------------------------------------------
# Splits.


@dataclasses.dataclass(frozen=True)
class Holdout:
  """Model-selection videos: up to `per_class` per class, lowest rank_key(dataset, 'heldout', path)
  first, among the source's videos that none of the `exclude` lists (the protocol's) holds. `take`
  selects them; without it, a split keeps the source minus them (a held-out slice carved out of a whole
  training split)."""
  dataset: str
  per_class: int
  take: bool
  exclude: tuple[PinnedFile, ...] = ()

  def apply(self, rows: list[Entry]) -> list[Entry]:
    used = {p for f in self.exclude for p, _ in f.rows()}
    chosen = {p for p, _ in select_per_class([r for r in rows if r[0] not in used], self.per_class,
                                             self.dataset, 'heldout')}
    return [r for r in rows if (r[0] in chosen) == self.take]

  def describe(self) -> str:
    what = 'kept' if self.take else 'removed'
    out = f"up to {self.per_class} per class {what}, smallest rank_key('{self.dataset}', 'heldout', path)"
    lists = ', '.join(f.rel for f in self.exclude)
    return out + (f' among videos in none of {lists}' if lists else '')


@dataclasses.dataclass(frozen=True)
class Split:
  """One list of a protocol and the class list its label ids index."""
  name: str  # 'train', 'heldout', 'test', 'val', 'base_val' or 'novel_val'.
  list_file: PinnedFile
  class_list_name: str  # 'full', 'base', 'novel' or 'k600_zs_split{1,2,3}'.
  class_file: PinnedFile
  holdout: Holdout | None = None

  @property
  def list_path(self) -> str:
    return self.list_file.path

  @property
  def class_list_path(self) -> str:
    return self.class_file.path

  @functools.cached_property
  def class_list(self) -> list[str]:
    return parse_class_list(self.class_file.read(), self.class_file.path)

  def available(self) -> bool:
    return self.list_file.exists() and self.class_file.exists()

  def entries(self) -> list[Entry]:
    """[(relative video path, label id into class_list)], verified against the pins."""
    rows = self.list_file.rows()
    n = len(self.class_list)
    bad = next((r for r in rows if not 0 <= r[1] < n), None)
    if bad:
      raise SplitFileError(f'{self.list_path}: {bad[0]} has label {bad[1]}, outside the {n} classes of '
                           f'{self.class_list_path} ({self.class_list_name})')
    return self.holdout.apply(rows) if self.holdout else rows

  def count(self) -> int | None:
    """The number of videos: from the pin when it has one, else by reading the files (None if absent)."""
    if self.holdout is None and self.list_file.pin.get('lines') is not None:
      return self.list_file.pin['lines']
    return len(self.entries()) if self.available() else None

  def record(self) -> dict[str, Any]:
    pin = self.list_file.pin
    out = {'list': self.list_file.rel, 'sha256': pin.get('sha256'), 'git_blob': pin.get('git_blob'),
           'class_list': self.class_list_name, 'class_file': self.class_file.rel}
    if self.list_file.manifest is not self.class_file.manifest:
      out['list_from'] = self.list_file.manifest.name
    if self.holdout:
      out['holdout'] = self.holdout.describe()
    return out


@dataclasses.dataclass(frozen=True)
class ProtocolSplits:
  """The splits of one protocol run: train, heldout (model selection) and the evaluated lists."""
  split_set: str
  dataset: str
  protocol: str
  options: Mapping[str, int]
  definition: str | None  # K600 zero-shot only: 'mixed' or 'val_only'.
  source: str
  train: Split | None
  heldout: Split | None
  evals: tuple[Split, ...]
  model_selection: str

  def __iter__(self) -> Iterator[Split]:
    return iter([s for s in (self.train, self.heldout) if s] + list(self.evals))

  def __getitem__(self, name: str) -> Split:
    for s in self:
      if s.name == name:
        return s
    raise KeyError(f'{self.protocol} on {self.split_set}/{self.dataset} has no split {name!r}; '
                   f'it has {[s.name for s in self]}')

  def record(self) -> dict[str, Any]:
    """What every result stores, so numbers from different split sets are never compared blindly."""
    out = {'split_set': self.split_set, 'dataset': self.dataset, 'protocol': self.protocol,
           'options': dict(self.options), 'source': self.source,
           'splits': {s.name: s.record() for s in self}, 'model_selection': self.model_selection}
    if self.definition:
      out['k600_definition'] = self.definition
    return out


class SplitSet:
  """The named split set of one dataset: its protocols, options and splits."""

  def __init__(self, name: str, dataset: str, splits_dir: str | None = None):
    if name not in SPLIT_SETS:
      raise ValueError(f'unknown split set {name!r}; choose from {SPLIT_SETS}')
    if dataset not in DATASETS:
      raise ValueError(f'unknown dataset {dataset!r}; choose from {DATASETS}')
    self.name, self.dataset = name, dataset
    self.splits_dir = splits_dir or default_splits_dir()
    if name == 'vifi':
      self._main = load_pinned('vifi', self.splits_dir)
    else:
      self._main = load_generated(dataset, self.splits_dir, name)

  def __repr__(self) -> str:
    return f'SplitSet({self.name!r}, {self.dataset!r}, splits_dir={self.splits_dir!r})'

  def protocols(self) -> tuple[str, ...]:
    return tuple(p for p in PROTOCOLS if p in self._main.data['protocols'].get(self.dataset, {}))

  def definitions(self, protocol: str) -> tuple[str | None, ...]:
    """The K600 zero-shot definitions this set offers; (None,) for every other protocol."""
    if (self.dataset, protocol) != ('k600', 'zero_shot'):
      return (None,)
    return tuple(K600_DEFINITIONS) if self.name == 'vifi' else (self._main.data['k600_definition'],)

  def option_grid(self, protocol: str, definition: str | None = None) -> list[dict[str, int]]:
    """Every option combination, e.g. [{'shots': 2}, {'shots': 4}, ...]."""
    options = self._spec(self._manifest(protocol, definition)[0], protocol)['options']
    names = sorted(options)
    return [dict(zip(names, values)) for values in itertools.product(*(options[n] for n in names))]

  def option_dependent(self, protocol: str, definition: str | None = None) -> set[str]:
    """Names of the protocol's splits whose list depends on an option (`train` of few-shot: shots)."""
    spec = self._spec(self._manifest(protocol, definition)[0], protocol)
    return {name for name, s in spec['splits'].items() if '{' in s['list'] or '{' in s['classes']}

  def splits(self, protocol: str, *, definition: str | None = None, **options: int) -> ProtocolSplits:
    """The splits of `protocol` for one option choice (shots=K, seed=S or split=N)."""
    manifest, definition = self._manifest(protocol, definition)
    spec = self._spec(manifest, protocol)
    allowed = spec['options']
    if set(options) != set(allowed) or any(options[k] not in allowed[k] for k in allowed):
      raise ValueError(f'{protocol} on {self.name}/{self.dataset} takes '
                       f'{", ".join(f"{k} in {v}" for k, v in allowed.items()) or "no options"}; '
                       f'got {options or "none"}')
    made = {name: self._split(manifest, name, s['list'].format(**options), s['classes'].format(**options))
            for name, s in spec['splits'].items()}
    train = made.pop('train', None)
    heldout, selection = None, 'none: evaluation-only protocol'
    if train is not None:
      train, heldout, selection = self._heldout(manifest, protocol, spec, train)
    return ProtocolSplits(self.name, self.dataset, protocol, dict(options), definition, manifest.source,
                          train, heldout, tuple(made.values()), selection)

  # -------------------------------------------------------------------------------------------------

  def _manifest(self, protocol: str, definition: str | None) -> tuple[Manifest, str | None]:
    choices = self.definitions(protocol)
    if definition is None:
      definition = choices[0]
    if definition not in choices:
      if choices == (None,):
        raise ValueError(f'definition={definition!r} applies only to k600 zero_shot, not '
                         f'{self.dataset} {protocol}')
      raise ValueError(f'k600 zero_shot on the {self.name} set offers definitions {choices}; '
                       f'got {definition!r}')
    if definition is not None and self.name == 'vifi':
      return load_pinned(K600_DEFINITIONS[definition], self.splits_dir), definition
    return self._main, definition

  def _spec(self, manifest: Manifest, protocol: str) -> Mapping[str, Any]:
    specs = manifest.data['protocols'].get(self.dataset, {})
    if protocol not in specs:
      raise ValueError(f'the {self.name} split set has no {protocol} protocol for {self.dataset}; '
                       f'it has {list(specs)} (protocols: {PROTOCOLS})')
    return specs[protocol]

  def _split(self, manifest: Manifest, name: str, rel: str, classes: str, **kw: Any) -> Split:
    class_rel = manifest.data['class_lists'][self.dataset][classes]
    return Split(name, manifest.file(rel), classes, manifest.file(class_rel), **kw)

  def _heldout(self, manifest: Manifest, protocol: str, spec: Mapping[str, Any],
               train: Split) -> tuple[Split, Split | None, str]:
    h = spec['heldout']
    fallback = 'last checkpoint (never the test split): no held-out source, {}'
    if h['mode'] == 'carve':
      rule = Holdout(self.dataset, HELDOUT_PER_CLASS, take=True)
      train = dataclasses.replace(train, holdout=dataclasses.replace(rule, take=False))
      heldout = self._split(manifest, 'heldout', h['source'], h['classes'], holdout=rule)
      return train, heldout, f'heldout: {h["source"]}, {rule.describe()}; train drops them'
    # Every list of the protocol, for every option: training lists above all, evaluated lists as a guard.
    rels = [s['list'].format(**o) for o in self.option_grid(protocol) for s in spec['splits'].values()]
    exclude = tuple(manifest.file(rel) for rel in dict.fromkeys(rels))
    missing = [f.path for f in exclude if not f.exists()]
    if h['source'].startswith('@official/'):
      try:
        official = load_generated(self.dataset, self.splits_dir)
      except SplitFileError:
        return train, None, fallback.format(
            f'the official training split is needed; run `{_CLI} generate --dataset={self.dataset} '
            '--official=DIR` to convert it')
      source = official.file(h['source'][1:])  # '@official/x' -> the generated set's 'official/x'.
      class_file = manifest.file(manifest.data['class_lists'][self.dataset][h['classes']])
      theirs = official.file(official.data['class_lists'][self.dataset]['full'])
      if class_file.exists() and parse_class_list(class_file.read(), class_file.path) != parse_class_list(
          theirs.read(), theirs.path):
        raise SplitFileError(f'{class_file.path} and the generated full class list of {self.dataset} '
                             'differ, so official label ids cannot be used with this set')
      heldout = Split('heldout', source, h['classes'], class_file)
    else:
      heldout = self._split(manifest, 'heldout', h['source'], h['classes'])
    absent = ([] if heldout.list_file.exists() else [heldout.list_path]) + missing
    if absent:
      return train, None, fallback.format(f'{absent[0]} is absent')
    rule = Holdout(self.dataset, HELDOUT_PER_CLASS, take=True, exclude=exclude)
    heldout = dataclasses.replace(heldout, holdout=rule)
    return train, heldout, f'heldout: {heldout.list_file.rel}, {rule.describe()}'


def get_split_set(name: str, dataset: str, splits_dir: str | None = None) -> SplitSet:
  """The split set `name` ('vifi', 'generated' or 'subset') of `dataset`, files under `splits_dir`."""
  return SplitSet(name, dataset, splits_dir)
