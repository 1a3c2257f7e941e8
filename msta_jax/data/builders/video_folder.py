"""The generic TFDS builder for "a folder of videos plus `path label` lists"; HMDB51, UCF101, SSv2, K400 and
K600 are configurations of it.

Videos follow TFDS's manual_dir convention: the folder the list paths are relative to is the manual dir
(`DownloadConfig(manual_dir=...)`, `--videos_dir` of `python -m msta_jax.tools.build`). A config is either

- named, `<dataset>_<split set>_<protocol>[_<k600 definition>]` (e.g. `hmdb51_vifi_few_shot`): the lists
  of every option of that protocol in a split set (splits.py), each list stored once as a TFDS split; or
- generic, made by `generic_config(name, {split: list file}, classes)`.

Stored split names: the protocol's split name (`train`, `heldout`, `test`, `base_val`, ...) when every
option uses the same list, else suffixed with the option (`train_shots16`, `test_split2`).
`protocol_splits(info, shots=16)` maps a protocol run's splits to them. K400 zero-shot and full
supervision use the same lists, so both names lead to the `supervised` config.

Decoding runs in a process pool (decode.store_task: decode, resize, subsample, JPEG) and this process
only writes. Rejected videos (and partial ones unless StorageOptions.keep_partial) are quarantined:
listed in quarantine.json / quarantine.txt next to the data and counted in the metadata; the build goes on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
from typing import Any, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tqdm import auto as tqdm

from msta_jax import files
from msta_jax.data import classes as classes_lib
from msta_jax.data import counts
from msta_jax.data import decode
from msta_jax.data import features
from msta_jax.data import locate
from msta_jax.data import splits

NAME = 'video_folder'
VERSION = '1.1.0'
MAX_MISSING = counts.MAX_MISSING
FILE_FORMAT = 'array_record'  # The pipeline's loaders need random access (pipeline.py).
# K400 zero-shot (source) and full supervision use the same train / heldout / val lists: one config.
SHARED_PROTOCOLS = {('k400', 'zero_shot'): 'supervised'}
_SPLIT_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*')


@dataclasses.dataclass(eq=False)
class VideoFolderConfig(tfds.core.BuilderConfig):
  """Which lists a dataset holds. Named configs set dataset/split_set/protocol(/definition), resolved from
  the split files at build time; generic ones set `lists` and optionally `classes`."""
  dataset: str | None = None
  split_set: str | None = None
  protocol: str | None = None
  definition: str | None = None  # K600 zero-shot only: 'mixed' or 'val_only'.
  lists: tuple[tuple[str, str], ...] = ()  # ((tfds split name, list file), ...).
  classes: str | None = None  # A class-list file (json list, index->name json, id,name csv) or dataset.


def config_name(dataset: str, protocol: str, split_set: str = 'vifi', definition: str | None = None) -> str:
  """The named config holding `protocol` of `dataset` in `split_set` (K600 zero-shot: per definition)."""
  protocol = SHARED_PROTOCOLS.get((dataset, protocol), protocol)
  if (dataset, protocol) == ('k600', 'zero_shot'):
    definition = definition or ('mixed' if split_set == 'vifi' else 'val_only')
    return f'{dataset}_{split_set}_{protocol}_{definition}'
  if definition:
    raise ValueError(f'definition={definition!r} applies only to k600 zero_shot, not {dataset} {protocol}')
  return f'{dataset}_{split_set}_{protocol}'


def _named_configs() -> list[VideoFolderConfig]:
  """One config per split set, dataset, protocol (and K600 definition) of the shipped ViFi-CLIP layout,
  which the generated set follows (it offers only the val_only K600 definition)."""
  # The shipped file itself (not splits._ASSETS, which tests repoint at miniature pins).
  path = os.path.join(os.path.dirname(splits.__file__), 'assets', 'splits', 'vifi.json')
  with open(path, encoding='utf-8') as f:
    layout = json.load(f)['protocols']
  out = []
  for split_set in splits.SPLIT_SETS:
    for dataset in splits.DATASETS:
      for protocol in layout.get(dataset, {}):
        if (dataset, protocol) in SHARED_PROTOCOLS:
          continue
        definitions = (None,)
        if (dataset, protocol) == ('k600', 'zero_shot'):
          definitions = tuple(splits.K600_DEFINITIONS) if split_set == 'vifi' else ('val_only',)
        for definition in definitions:
          out.append(VideoFolderConfig(
              name=config_name(dataset, protocol, split_set, definition), dataset=dataset,
              split_set=split_set, protocol=protocol, definition=definition,
              description=f'{dataset} {protocol} lists of the {split_set} split set' +
              (f', {definition} definition' if definition else '')))
  return out


def generic_config(name: str, lists: dict[str, str], classes: str | None = None) -> VideoFolderConfig:
  """A config for your own lists: {tfds split name: `path label` list file}, optional class list."""
  if not re.fullmatch(r'[a-z0-9][a-z0-9_.-]*', name):
    raise ValueError(f'--name={name!r}: use lower-case letters, digits, _ . - (it names a folder)')
  if name in {c.name for c in VideoFolder.BUILDER_CONFIGS}:
    raise ValueError(f'--name={name} is a named config; build it with --dataset/--protocol or pick '
                     'another name')
  if not lists:
    raise ValueError('give at least one split: --split NAME=LIST_FILE')
  for split, path in lists.items():
    if not _SPLIT_NAME.fullmatch(split):
      raise ValueError(f'--split {split}={path}: split names are letters, digits and _, starting with a '
                       'letter')
    if not os.path.isfile(path):
      raise FileNotFoundError(f'--split {split}={path}: no such list file')
  return VideoFolderConfig(name=name, lists=tuple(lists.items()), classes=classes,
                           description=f'videos listed in {", ".join(lists.values())}')


# ---------------------------------------------------------------------------------------------------
# Resolving a config to lists.


@dataclasses.dataclass
class SplitSource:
  """One stored split: its entries and the class list their label ids index."""
  name: str
  entries: list[splits.Entry]
  classes: list[str]
  class_list: str
  source: str
  extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def _options_suffix(options: dict[str, int]) -> str:
  return '_'.join(f'{k}{v}' for k, v in sorted(options.items()))


def resolve(config: VideoFolderConfig, splits_dir: str | None = None) -> tuple[list[SplitSource], dict]:
  """The splits to store and the metadata that says where they came from."""
  if config.dataset is None:
    return _resolve_generic(config)
  ss = splits.get_split_set(config.split_set, config.dataset, splits_dir)
  runs = [(o, ss.splits(config.protocol, definition=config.definition, **o))
          for o in ss.option_grid(config.protocol, config.definition)]
  # A protocol split keeps its plain name when every option stores the same list (same holdout rule) and
  # its list does not depend on an option (a subset generated with --shots=2 still stores train_shots2).
  per_option = ss.option_dependent(config.protocol, config.definition)
  key = lambda s: (s.list_file.manifest.name, s.list_file.rel, s.class_file.rel,
                   s.holdout.describe() if s.holdout else None)
  variants: dict[str, set] = {}
  for _, ps in runs:
    for s in ps:
      variants.setdefault(s.name, set()).add(key(s))
  sources: dict[tuple, SplitSource] = {}
  run_records = []
  for options, ps in runs:
    names = {}
    for s in ps:
      if key(s) not in sources:  # Stored once, under the name of the first option that uses it.
        plain = len(variants[s.name]) == 1 and s.name not in per_option
        tfds_name = s.name if plain else f'{s.name}_{_options_suffix(options)}'
        sources[key(s)] = SplitSource(tfds_name, s.entries(), s.class_list, s.class_list_name,
                                      f'{ps.split_set}:{s.list_file.rel}', {'record': s.record()})
      names[s.name] = sources[key(s)].name
    run_records.append({'options': dict(options), 'tfds_splits': names, 'record': ps.record()})
  meta = {'split_set': {'name': ss.name, 'dataset': ss.dataset, 'protocol': config.protocol,
                        'definition': runs[0][1].definition if runs else None, 'runs': run_records}}
  return list(sources.values()), meta


def _read_classes(spec: str) -> tuple[list[str], str, int]:
  """(names, class-list name, the id of the first class: 1 for a 1-based classInd.txt)."""
  if os.path.isfile(spec):
    with open(spec, 'rb') as f:
      names, first = splits.parse_class_index(f.read(), spec)
    return names, os.path.basename(spec), first
  try:
    return classes_lib.names(spec), spec, 0
  except KeyError as e:
    raise FileNotFoundError(f'--classes={spec}: no such file and not a shipped dataset '
                            f'({", ".join(classes_lib.DATASETS)})') from e


def _resolve_generic(config: VideoFolderConfig) -> tuple[list[SplitSource], dict]:
  names, class_list, first = _read_classes(config.classes) if config.classes else (None, '', 0)
  sources = []
  for name, path in config.lists:
    with open(path, 'rb') as f:
      data = f.read()
    rows = splits.parse_list(data.decode('utf-8'), path, folder_classes=names, first_id=first)
    sources.append(SplitSource(name, rows, [], '', os.path.abspath(path), {'sha256': splits.sha256(data)}))
  if names is None:  # The class count comes from the labels; names are the ids.
    top = max((l for s in sources for _, l in s.entries), default=-1)
    names, class_list = [str(i) for i in range(top + 1)], 'label_ids'
  for s in sources:
    bad = next(((p, l) for p, l in s.entries if not 0 <= l < len(names)), None)
    if bad:  # The label as the list writes it.
      raise ValueError(f'{s.source}: {bad[0]} has label {bad[1] + first}, outside the {len(names)} classes '
                       f'(ids {first}..{len(names) - 1 + first}) of {config.classes or "the lists"}')
    s.classes, s.class_list = names, class_list
  return sources, {'split_set': None}


class TooManyMissing(ValueError):
  """More than max_missing of a split's listed videos are missing or unusable; the message names them."""


def missing_message(split: str, bad: list[str], listed: int, max_missing: float, what: str) -> str:
  shown = ', '.join(bad[:10]) + (f' and {len(bad) - 10} more' if len(bad) > 10 else '')
  return (f'split {split}: {len(bad)} of {listed} listed videos {what} ({len(bad) / max(listed, 1):.1%}, '
          f'more than --max_missing={max_missing:g}): {shown}')


def _preflight(sources: list[SplitSource], videos_dir: str, max_missing: float) -> dict[str, str | None]:
  """{listed path: file on disk or None}; fails before any decoding when a whole list finds no file (a
  wrong --videos_dir or layout) or more than max_missing of a split is absent."""
  if not os.path.isdir(videos_dir):
    raise FileNotFoundError(f'--videos_dir={videos_dir} is not a directory')
  finder = locate.Locator(videos_dir)
  found: dict[str, str | None] = {}
  problems = []
  for s in sources:
    for p, _ in s.entries:
      if p not in found:
        found[p] = finder.find(p)
    absent = [p for p, _ in s.entries if found[p] is None]
    if s.entries and len(absent) == len(s.entries):
      example = os.path.join(videos_dir, s.entries[0][0])
      raise FileNotFoundError(
          f'none of the {len(s.entries)} videos of split {s.name} ({s.source}) is under '
          f'--videos_dir={videos_dir} (e.g. {example}), neither as listed nor by file name in a subfolder; '
          'the lists expect the layout in docs/splits.md')
    if len(absent) > max_missing * len(s.entries):
      problems.append(missing_message(s.name, absent, len(s.entries), max_missing,
                                      f'are not under {videos_dir}'))
  if problems:
    raise TooManyMissing('; '.join(problems) + '. Nothing was decoded. Get the videos, or pass a larger '
                         '--max_missing knowingly (results then say the dataset is partial)')
  return found


# ---------------------------------------------------------------------------------------------------
# The quarantine report.


class Quarantine:
  """Every video not stored as is, once per file, with the splits that list it."""

  def __init__(self):
    self.entries: dict[str, dict[str, Any]] = {}
    self.per_split: dict[str, dict[str, Any]] = {}

  def add(self, split: str, key: str, result: decode.StoreResult, num_classes: int = 0) -> None:
    c = self.per_split.setdefault(split, {'listed': 0, 'stored': 0, 'missing': 0, 'quarantined': 0,
                                          'stored_per_class': [0] * num_classes})
    c['listed'] += 1
    stored = result.jpegs is not None
    v = result.verdict
    c['stored' if stored else 'missing' if v.reason == 'missing' else 'quarantined'] += 1
    if stored and 0 <= result.label < len(c['stored_per_class']):
      c['stored_per_class'][result.label] += 1
    if v.status == decode.OK:
      return
    entry = self.entries.setdefault(key, {
        'path': key, 'status': v.status, 'reason': v.reason, 'detail': v.detail, 'frames': v.frames,
        'stored': stored, 'splits': []})
    entry['splits'].append(split)

  def summary(self) -> dict[str, Any]:
    counts = decode.summarize(decode.Verdict(e['path'], e['status'], e['reason'])
                              for e in self.entries.values())
    return {'rejected': counts[decode.REJECTED], 'partial': counts[decode.PARTIAL],
            'quarantined_files': sum(not e['stored'] for e in self.entries.values()),
            'stored_partial_files': sum(e['stored'] for e in self.entries.values())}

  def text(self, title: str) -> str:
    s = self.summary()
    lines = [title]
    for split, c in self.per_split.items():
      note = '' if c['stored'] else '  (split not stored: nothing left)'
      lines.append(f'  {split:16} listed {c["listed"]:7}  stored {c["stored"]:7}  missing {c["missing"]:6}  '
                   f'quarantined {c["quarantined"]:6}{note}')
    lines.append(f'{s["quarantined_files"]} files quarantined, {s["stored_partial_files"]} partial files '
                 'stored')
    for status in (decode.REJECTED, decode.PARTIAL):
      for reason, n in s[status].items():
        lines.append(f'  {status:8} {reason:16} {n}')
    if self.entries:
      lines.append('Files (tab-separated: path, status, reason, stored or quarantined, splits, detail):')
    for e in sorted(self.entries.values(), key=lambda e: e['path']):
      what = 'stored' if e['stored'] else 'quarantined'
      lines.append(f'{e["path"]}\t{e["status"]}\t{e["reason"]}\t{what}\t{",".join(e["splits"])}\t'
                   f'{e["detail"]}')
    return '\n'.join(lines) + '\n'

  def unusable(self, split: str) -> list[str]:
    """The listed paths of `split` that were not stored (missing, rejected, or partial and not kept)."""
    return sorted(e['path'] for e in self.entries.values() if not e['stored'] and split in e['splits'])

  def write(self, directory: str, title: str) -> None:
    """quarantine.json and quarantine.txt (msta_jax.files: also into a gs:// data dir)."""
    files.write_atomic(os.path.join(directory, 'quarantine.json'), json.dumps(
        {'summary': self.summary(), 'splits': self.per_split,
         'files': sorted(self.entries.values(), key=lambda e: e['path'])}, indent=1))
    files.write_atomic(os.path.join(directory, 'quarantine.txt'), self.text(title))


# ---------------------------------------------------------------------------------------------------
# The builder.


class VideoFolder(tfds.core.GeneratorBasedBuilder):
  """Videos decoded with PyAV, stored as JPEG frames with the schema of features.py."""

  VERSION = tfds.core.Version(VERSION)
  RELEASE_NOTES = {
      '1.0.0': 'First release: PyAV decoding, JPEG frames, quarantine report.',
      '1.1.0': 'list_index feature and lists/<split>.txt (logits in list order, with video ids); official '
               'layouts found by file name; missing counts, stored per class, max_missing.'}
  BUILDER_CONFIGS = _named_configs()
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      'Put the videos in one folder, laid out as the lists expect or as the dataset is downloaded '
      '(docs/data.md), and pass it as manual_dir (--videos_dir of python -m msta_jax.tools.build).')

  def __init__(self, *, storage: decode.StorageOptions = decode.StorageOptions(), workers: int = 0,
               splits_dir: str | None = None, progress: bool = True,
               timeout_s: float = decode.RESULT_TIMEOUT_S, max_missing: float = MAX_MISSING, **kwargs: Any):
    """storage: how frames are stored; workers: decoding processes (0: one per core, 1: in this process);
    splits_dir: where named configs find their lists; progress: a tqdm bar per split; timeout_s: see
    decode.imap_bounded; max_missing: see _preflight and `over_max_missing`. Files are array_record unless
    kwargs say otherwise."""
    self._storage, self._workers, self._splits_dir = storage, workers or os.cpu_count() or 1, splits_dir
    self._progress, self._timeout_s, self._pool, self.quarantine = progress, timeout_s, None, Quarantine()
    self._max_missing, self._sources = max_missing, []
    kwargs.setdefault('file_format', FILE_FORMAT)
    super().__init__(**kwargs)

  # TFDS prints 'Downloading and preparing dataset Unknown size ...' and '... prepared' on stdout; there is no
  # download here, and tools/build.py prints what was built, with the counts.
  def _log_download_bytes(self) -> None:
    pass

  def _log_download_done(self) -> None:
    pass

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=self.builder_config.description,
                                 features=features.features_dict('jpeg', extra={'list_index': np.int32}),
                                 metadata=tfds.core.MetadataDict())

  def _download_and_prepare(self, dl_manager, download_config=None) -> None:
    self.quarantine = Quarantine()
    with self._decoders():
      super()._download_and_prepare(dl_manager, download_config)
    meta = self.info.metadata
    meta['quarantine'] = self.quarantine.summary()
    for name, counts in self.quarantine.per_split.items():
      meta['splits'][name].update(counts)
    meta['max_missing'] = self._max_missing
    meta['over_max_missing'] = {
        s.name: missing_message(s.name, self.quarantine.unusable(s.name), len(s.entries), self._max_missing,
                                'are missing or unusable')
        for s in self._sources if len(self.quarantine.unusable(s.name)) > self._max_missing * len(s.entries)}
    for s in self._sources:  # Line n is list_index n: logits files name their videos from it.
      files.write_atomic(os.path.join(os.fspath(self.data_dir), 'lists', f'{s.name}.txt'),
                         ''.join(f'{p}\n' for p, _ in s.entries))
    self.quarantine.write(os.fspath(self.data_dir), f'{self.name}/{self.builder_config.name} '
                          f'{self.version}: videos under {dl_manager.manual_dir}')

  def _split_generators(self, dl_manager):
    videos_dir = os.fspath(dl_manager.manual_dir)
    sources, meta = resolve(self.builder_config, self._splits_dir)
    found = _preflight(sources, videos_dir, self._max_missing)
    self._sources = sources
    md = self.info.metadata
    md.update(meta)
    md.update(self._storage.record())
    md['videos_dir'] = videos_dir
    md['splits'] = {s.name: features.split_metadata(s.classes, s.class_list, s.source, **s.extra)
                    for s in sources}
    generators = {}
    for s in sources:
      tasks = [(found[rel] or os.path.join(videos_dir, rel), rel, label, self._storage) for rel, label in s.entries]
      results = self._decode(tasks, s.name)
      positions = {rel: i for i, (rel, _) in enumerate(s.entries)}
      # TFDS cannot write a split without examples: decode up to the first storable video now, and leave
      # out a split whose every video is quarantined (the metadata and the report say so).
      head = []
      for r in results:
        head.append(r)
        if r.jpegs is not None:
          break
      if head and head[-1].jpegs is not None:
        generators[s.name] = self._generate_examples(s.name, itertools.chain(head, results), positions,
                                                     len(s.classes))
        continue
      for r in head:
        self.quarantine.add(s.name, r.key, r, len(s.classes))
      md['splits'][s.name]['omitted'] = f'all {len(s.entries)} videos quarantined: the split is not stored'
    if not generators:
      raise ValueError(f'every listed video under {videos_dir} was quarantined, nothing to store: '
                       f'{self.quarantine.summary()}; run python -m msta_jax.tools.probe on a few of them')
    return generators

  def _generate_examples(self, split: str, results: Iterator[decode.StoreResult], positions: dict[str, int],
                         num_classes: int):
    for result in results:
      self.quarantine.add(split, result.key, result, num_classes)
      if result.jpegs is None:
        continue
      yield result.key, {'video': result.jpegs, 'label': result.label, 'path': result.key,
                         'fps': result.fps, 'orig_frames': result.orig_frames,
                         'list_index': positions[result.key]}

  @contextlib.contextmanager
  def _decoders(self):
    """A spawned pool (not forked: TensorFlow's threads make fork unsafe) that lives for the build."""
    if self._workers <= 1:
      yield
      return
    # maxtasksperchild: a leak in a decoder library cannot grow without bound over 100k videos.
    self._pool = multiprocessing.get_context('spawn').Pool(self._workers, maxtasksperchild=500)
    try:
      yield
    finally:  # Every result is consumed by now; terminate, as close() + join() would wait on lost tasks.
      self._pool.terminate()
      self._pool = None

  def _decode(self, tasks: list, desc: str) -> Iterator[decode.StoreResult]:
    bar = tqdm.tqdm(total=len(tasks), desc=f'{self.builder_config.name}/{desc}', unit='video',
                    disable=not self._progress, smoothing=0.05)
    if self._pool is None:
      results = map(decode.store_task, tasks)
    else:
      results = decode.imap_bounded(self._pool, decode.store_task, tasks, limit=4 * self._workers,
                                    timeout_s=self._timeout_s, failed=decode.failed_store)
    bad = 0
    try:
      for result in results:
        bad += result.jpegs is None
        bar.set_postfix(quarantined=bad, refresh=False)
        bar.update()
        yield result
    finally:
      bar.close()

def build(config: VideoFolderConfig, videos_dir: str, data_dir: str, *,
          storage: decode.StorageOptions = decode.StorageOptions(), workers: int = 0,
          splits_dir: str | None = None, progress: bool = True, overwrite: bool = False,
          timeout_s: float = decode.RESULT_TIMEOUT_S, max_missing: float = MAX_MISSING) -> VideoFolder:
  """Builds `config` from the videos under `videos_dir` into data_dir/video_folder/<config>/<version>.

  An existing complete build is kept (TFDS reuses it) unless `overwrite`. Returns the builder; its
  `info.metadata['over_max_missing']` names the splits with more than `max_missing` unusable videos
  (TooManyMissing is raised before decoding when that many are absent).
  """
  builder = VideoFolder(config=config, data_dir=data_dir, storage=storage, workers=workers,
                        splits_dir=splits_dir, progress=progress, timeout_s=timeout_s, max_missing=max_missing)
  mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if overwrite else
          tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=videos_dir, download_mode=mode))
  return builder


def dataset_dir(data_dir: str, name: str, version: str = VERSION) -> str:
  """Where `build` writes config `name`: data_dir/video_folder/<name>/<version>."""
  return os.path.join(data_dir, NAME, name, version)


def load(data_dir: str, name: str) -> tfds.core.DatasetBuilder:
  """The built dataset `name` (named or generic config), read from its files."""
  path = dataset_dir(data_dir, name)
  if not (epath.Path(path) / 'dataset_info.json').is_file():  # Also a gs:// data dir.
    raise FileNotFoundError(f'{path} holds no built dataset; run python -m msta_jax.tools.build first')
  return tfds.builder_from_directory(path)


def protocol_splits(info: tfds.core.DatasetInfo, **options: int) -> dict[str, str]:
  """{protocol split name: stored split} of one option choice of a named config, e.g.
  protocol_splits(info, shots=16) -> {'train': 'train_shots16', 'heldout': 'heldout', 'test': 'test'}."""
  meta = info.metadata or {}
  record = meta.get('split_set')
  if not record:
    return {name: name for name in info.splits}
  for run in record['runs']:
    if run['options'] == options:
      return dict(run['tfds_splits'])
  raise ValueError(f'{info.full_name} holds {record["protocol"]} with options '
                   f'{[r["options"] for r in record["runs"]]}; got {options}')

