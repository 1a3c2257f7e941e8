"""Input pipelines over built TFDS datasets: random access (array_record) + grain, numpy batches.

Why random access: the training order is an index stream (shuffled per epoch from `seed`), so the
loader's state is a few integers, exact resume is O(1) (no replaying of shuffle buffers), each
process reads only its own slice of the stream (no duplicates within an epoch), and per-clip
randomness is derived by grain from (seed, position), independent of worker threads.

Examples are read undecoded (`tf.train.Example`) and only the T sampled frames of a clip are decoded.
Every batch is process-local numpy; the trainer assembles global arrays. Clips are uint8 pixels (float32
in 0..1 for training with colour ops and augment.uint8_colour=False): normalisation happens on the device
(msta_jax/data/normalize.py). Training batches can be built in grain worker processes (`num_workers`)
beside the reading threads; the data order and every random draw are the same for any worker and thread
count, so the state is the same too.

    src = open_split(data_dir, 'synthetic/seed0', 'few_shot_train_k16')
    clip = ClipSpec(num_frames=8, image_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    train = TrainLoader(src, global_batch=32, clip=clip, augment=transforms.Augment(), seed=0)
    batch = next(train)            # {'video': [b, T, S, S, 3] uint8, 'label': [b] int32, 'mask': [b]}
    state = train.get_state()      # JSON-able; TrainLoader.set_state(state) resumes exactly
    for batch in eval_batches(src_test, global_batch=8, clip=clip, clips=2, crops=3):   # every video once
      ...                          # 'video' [b, V, T, S, S, 3], 'index' (-1 for padding), 'mask'
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import threading
import time
from typing import Any, Callable, Iterator

import grain
import numpy as np
from absl import flags, logging
from etils import epath

from msta_jax import paths
from msta_jax.data import bad_records as bad_records_lib
from msta_jax.data import frame_cache
from msta_jax.data import host_memory
from msta_jax.data import test_sampling
from msta_jax.data import transforms

# Numeric features other than the video/label that batches carry when present (synthetic factors).
FACTOR_KEYS = ('shape', 'colour', 'motion')


class DatasetMissingError(FileNotFoundError):
  """A built dataset or split is not where the config says; the message says how to build it."""


_VIDEO_FOLDER = re.compile(r'video_folder/(?P<config>[a-z0-9_]+)(/[0-9.]+)?/?')


def build_hint(data_dir: str, name: str) -> str:
  """The command that builds dataset `name` under `data_dir` (docs/data.md, "Building datasets")."""
  m = _VIDEO_FOLDER.fullmatch(name)
  if m:
    from msta_jax.data.builders import video_folder  # Lazy: TFDS builders import TensorFlow.
    named = {c.name: c for c in video_folder.VideoFolder.BUILDER_CONFIGS}.get(m['config'])
    if named is not None:
      flags = f'--dataset={named.dataset} --protocol={named.protocol}'
      if named.split_set != 'vifi':
        flags += f' --split_set={named.split_set}'
      if named.definition:
        flags += f' --definition={named.definition}'
      fetch = ('`python -m msta_jax.tools.splits fetch` (the pinned lists), then ' if named.split_set == 'vifi'
               else f'`python -m msta_jax.tools.splits generate --dataset={named.dataset} --official=DIR'
               + (' --classes=A,B,...' if named.split_set == 'subset' else '') + '`, then ')
      return (f'{fetch}`python -m msta_jax.tools.build {flags} --videos_dir=/path/to/{named.dataset}/videos '
              f'--data_dir={data_dir}` (docs/data.md, "Building datasets"; the video layout is in docs/splits.md)')
    return (f'`python -m msta_jax.tools.build --name={m["config"]} --videos_dir=DIR --split NAME=LIST_FILE ... '
            f'--data_dir={data_dir}` (docs/data.md, "Building datasets")')
  if name == 'synthetic' or name.startswith('synthetic/'):
    return (f'`python -m msta_jax.tools.synthetic --data_dir={data_dir}` (the trainer also generates it '
            "itself when config.data.dataset='synthetic')")
  return ('`python -m msta_jax.tools.build ...` for videos, or `python -m msta_jax.tools.synthetic '
          '--data_dir=...` for the synthetic set (docs/data.md, "Building datasets")')


def resolve_dataset_dir(data_dir: str, name: str) -> str:
  """`data_dir/name`, or the single version/config directory below it holding dataset_info.json.
  `data_dir` may be a URL (gs://bucket/tfds): it reaches TFDS unchanged (msta_jax.paths)."""
  root = os.path.join(paths.local_or_url(os.path.expanduser(data_dir)), name)
  if (epath.Path(root) / 'dataset_info.json').exists():
    return root
  found = sorted({os.path.dirname(os.fspath(p)) for depth in ('*', '*/*')
                  for p in epath.Path(root).glob(f'{depth}/dataset_info.json')})
  if len(found) == 1:
    return found[0]
  if not found:
    raise DatasetMissingError(
        f'no built dataset at {root} (config.data.data_dir={data_dir!r}, config.data.name={name!r}); '
        f'build it first: {build_hint(data_dir, name)}')
  raise DatasetMissingError(f'{root} holds several built versions {found}; point config.data.name at one')


@dataclasses.dataclass
class SplitSource:
  """One split of a built dataset: random-access records plus its class list and metadata."""
  path: str
  split: str
  source: Any               # Sequence of serialized tf.train.Example (`parse` reads one).
  classes: list[str]
  metadata: dict[str, Any]  # This split's metadata entry.
  dataset_metadata: dict[str, Any]

  def __len__(self) -> int:
    return len(self.source)


def open_split(data_dir: str, name: str, split: str) -> SplitSource:
  import tensorflow_datasets as tfds  # Lazy: TensorFlow only once a dataset is opened (not on import).
  path = resolve_dataset_dir(data_dir, name)
  builder = tfds.builder_from_directory(path)
  if split not in builder.info.splits:
    hint = ''
    if split == 'heldout':  # Built without its source list: the few-shot one needs the official splits.
      hint = ('. The heldout split is stored only when its source list was there at build time '
              '(docs/splits.md, "Model selection: held-out lists"; few-shot needs `python -m '
              'msta_jax.tools.splits generate --dataset=NAME --official=DIR`), then rebuild with --overwrite; '
              "or keep the last checkpoint instead with --config.data.val_split=''")
    raise DatasetMissingError(f'{path} has no split {split!r}; it has {sorted(builder.info.splits)}{hint}')
  formats = [str(getattr(f, 'value', f)) for f in ([builder.info.file_format] + list(
      getattr(builder.info, 'alternative_file_formats', []) or []))]
  if not any('array_record' in f for f in formats):
    raise DatasetMissingError(f'{path} was built as {formats}; the loaders need random access: rebuild it '
                              'with file_format=array_record (the msta_jax builders do this by default)')
  # Serialized bytes, parsed by `parse`: a source that deserialises needs the DatasetInfo's file format,
  # which does not survive pickling into grain's worker processes.
  source = builder.as_data_source(split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
  bad_records_lib.check_shards(path, split, source)
  meta = dict(builder.info.metadata or {})
  split_meta = dict(meta.get('splits', {}).get(split, {}))
  if 'classes' not in split_meta:
    raise DatasetMissingError(f'{path}: metadata has no class list for split {split!r}')
  return SplitSource(path, split, source, list(split_meta['classes']), split_meta, meta)


def video_ids(src: SplitSource, index: np.ndarray, list_index: np.ndarray | None) -> np.ndarray:
  """The video id of each scored example: its path as the split's list writes it (the build's
  lists/<split>.txt, line `list_index`), or for generated data `<split>/<storage index>` (stable: the
  generator is deterministic)."""
  listed = epath.Path(src.path) / 'lists' / f'{src.split}.txt'
  if list_index is None or not listed.is_file():
    return np.asarray([f'{src.split}/{i:06d}' for i in index])
  lines = listed.read_text(encoding='utf-8').splitlines()
  return np.asarray([lines[i] for i in list_index])


def parse(record) -> dict[str, Any]:
  """A serialized tf.train.Example (or the proto) -> {'frames': [encoded bytes], 'label': int, other scalar
  features}."""
  if isinstance(record, bytes):
    from tensorflow.core.example import example_pb2  # Lazy: TensorFlow only once a record is read.
    record = example_pb2.Example.FromString(record)
  out: dict[str, Any] = {}
  for key, feat in record.features.feature.items():
    kind = feat.WhichOneof('kind')
    values = getattr(feat, kind).value
    if key == 'video':
      out['frames'] = list(values)
    elif kind == 'bytes_list':
      out[key] = values[0].decode('utf-8') if values else ''
    else:
      out[key] = values[0] if len(values) == 1 else np.asarray(values)
  if not out.get('frames'):
    raise ValueError('example without video frames')
  return out


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """What the model takes: frames, resolution and normalisation."""
  num_frames: int
  image_size: int
  mean: tuple[float, float, float]
  std: tuple[float, float, float]


def _common_fields(ex: dict[str, Any]) -> dict[str, Any]:
  out = {'label': np.int32(ex['label'])}
  for k in FACTOR_KEYS:
    if k in ex:
      out[k] = np.int32(ex[k])
  return out


def read_options(num_threads: int) -> grain.ReadOptions:
  """Prefetch for datasets batched BEFORE `to_iter_dataset`: an element is a whole batch, built by one
  thread, so the buffer counts batches: `num_threads` in flight and one ready. (A buffer sized in
  clips would hold that many batches: gigabytes of 12-view eval batches.)"""
  return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=num_threads + 1)


def check_batch(src: SplitSource, global_batch: int) -> None:
  """A training split must fill one global batch (checked before the model is built, and by TrainLoader)."""
  if len(src) < global_batch:
    raise ValueError(f'split {src.split!r} of {src.path} has {len(src)} clips, fewer than one global '
                     f'batch ({global_batch}); lower config.batch_size')


def default_num_workers() -> int:
  """Worker processes when config.data.num_workers is -1: one per core this process may use, less two
  (the trainer's own thread and XLA's dispatch)."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
  return max(1, cores - 2)


def _init_worker(worker_index: int, worker_count: int) -> None:
  """grain worker_init_fn: the worker keeps its freed memory (host_memory) and exits once its parent is
  gone, even after a SIGKILL (daemonic processes are only stopped by a parent that exits normally)."""
  del worker_index, worker_count
  host_memory.keep_freed_memory()
  parent = os.getppid()

  def watch():
    while os.getppid() == parent:
      time.sleep(0.5)
    os._exit(0)
  threading.Thread(target=watch, daemon=True, name='msta-exit-with-parent').start()


@dataclasses.dataclass(frozen=True)
class _TrainTransform:
  """storage index, rng -> one augmented training example (read, decoded, augmented). A picklable object
  (not a bound method of the loader), so that grain can ship it to worker processes. A record that fails
  to read or decode is named or replaced (bad_records.load, config.data.bad_records)."""
  clip: ClipSpec
  augment: transforms.Augment
  text_fn: Callable[[str], np.ndarray] | None
  src: SplitSource
  bad_records: str = 'error'
  cache: frame_cache.FrameCache | None = None  # Decoded frames of earlier epochs (data.decoded_cache_mb).

  def _read(self, index: int) -> tuple[int, Any]:
    return index, self.src.source[index]

  def _example(self, item: tuple[int, Any], rng: np.random.Generator, parsed: dict[str, Any]) -> dict[str, Any]:
    index, record = item
    ex = parse(record)
    parsed.update(ex)
    idx = transforms.segment_indices(len(ex['frames']), self.clip.num_frames, rng=rng)
    if self.cache is None:
      frames = transforms.decode_frames(ex['frames'], idx)
    else:
      frames = self.cache.frames(index, ex['frames'], idx)
    out = _common_fields(ex)
    out['video'] = transforms.train_clip(frames, self.clip.image_size, self.augment, rng)
    out['mask'] = np.float32(1.0)
    if self.text_fn is not None:
      out['caption_ids'] = self.text_fn(ex.get('caption', ''))
    return out

  def __call__(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
    return bad_records_lib.load(self._read, self._example, int(index), rng,
                                mode=self.bad_records, size=len(self.src), dataset_path=self.src.path,
                                split=self.src.split, source=self.src.source)


class TrainLoader:
  """Infinite, shuffled, augmented training batches of one process; exactly resumable.

  The state is (offset, batches consumed since it): resuming slices the mapped dataset after the
  consumed batches, so every clip keeps the random draws it had (grain derives them from the seed and
  the clip's position), whatever the number of worker processes and threads.
  """

  def __init__(self, src: SplitSource, *, global_batch: int, clip: ClipSpec, augment: transforms.Augment,
               seed: int, process_index: int = 0, process_count: int = 1, num_threads: int = 4,
               num_workers: int = 0, text_fn: Callable[[str], np.ndarray] | None = None,
               bad_records: str = 'error', decoded_cache_bytes: int = 0):
    if global_batch % process_count:
      raise ValueError(f'global batch {global_batch} is not divisible by {process_count} processes')
    check_batch(src, global_batch)
    if num_workers < 0:
      num_workers = default_num_workers()
    self.src, self.clip, self.augment, self.seed = src, clip, augment, seed
    self.global_batch, self.process_index, self.process_count = global_batch, process_index, process_count
    self.local_batch = global_batch // process_count
    self.steps_per_epoch = len(src) // global_batch
    self.num_threads, self.num_workers, self.text_fn = num_threads, num_workers, text_fn
    self.video_dtype = transforms.wire_dtype(augment)
    self.bad_records, self._replaced = bad_records_lib.check_mode(bad_records), []
    # Shared by the reading threads and kept across set_state; worker processes each get a copy.
    self.cache = frame_cache.FrameCache(decoded_cache_bytes) if decoded_cache_bytes else None
    host_memory.keep_freed_memory()  # The loader's threads run in this process.
    # Storage indices, read in the transform: a bad record is named by its index, or replaced.
    self._base = grain.MapDataset.range(len(src)).seed(seed).shuffle().repeat(None)
    self._iter = None
    self._start(offset=0)

  def _start(self, offset: int, batches: int = 0) -> None:
    if self._iter is not None:
      self._iter.close()  # The iterator being replaced (set_state) stops prefetching.
    self._offset, self._batches = offset, batches
    ds = self._base[offset + self.process_index::self.process_count]
    ds = ds.random_map(_TrainTransform(self.clip, self.augment, self.text_fn, self.src, self.bad_records,
                                       self.cache))
    if batches:
      ds = ds[batches * self.local_batch:]  # After the map: clips keep their positions, hence their draws.
    ds = ds.batch(self.local_batch, drop_remainder=True).to_iter_dataset(read_options(self.num_threads))
    if self.num_workers:
      if not flags.FLAGS.is_parsed():  # grain reads its absl flags; a library caller (tests) parsed none.
        flags.FLAGS.mark_as_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.num_workers),
                          worker_init_fn=_init_worker)
    self._iter = iter(ds)

  def __iter__(self) -> 'TrainLoader':
    return self

  def close(self) -> None:
    """Stops the prefetch threads and worker processes (they would otherwise go on filling buffers)."""
    self._iter.close()

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iter)
    self._batches += 1
    if self.bad_records != 'error':
      self._replaced = self._replaced + bad_records_lib.take_replacements(batch)
    return batch

  def get_state(self) -> dict[str, Any]:
    """JSON-able position after the last batch `next` returned."""
    return {'offset': self._offset, 'batches': self._batches, 'process_count': self.process_count,
            'global_batch': self.global_batch, 'seed': self.seed, 'num_examples': len(self.src),
            **({'bad_records': self._replaced} if self.bad_records != 'error' else {})}

  def set_state(self, state: dict[str, Any]) -> str:
    """Resumes; with another process count or batch, restarts at the epoch boundary. Returns a note."""
    if state.get('seed') != self.seed or state.get('num_examples') != len(self.src):
      raise ValueError(f'data state is for seed {state.get("seed")} / {state.get("num_examples")} clips; '
                       f'this run has seed {self.seed} / {len(self.src)} clips')
    batches = state['batches'] if 'batches' in state else state['iterator']['next_index']  # Older states.
    self._replaced = [list(p) for p in state.get('bad_records', [])]
    if state['process_count'] == self.process_count and state['global_batch'] == self.global_batch:
      self._start(state['offset'], batches)
      return 'data iterator restored exactly'
    consumed = state['offset'] + batches * state['global_batch']
    epoch = consumed // len(self.src)
    self._start(offset=epoch * len(self.src))
    note = (f'data iterator saved with {state["process_count"]} processes x batch {state["global_batch"]}, '
            f'now {self.process_count} x {self.global_batch}: the data order restarts at the start of epoch {epoch}')
    logging.warning(note)
    return note


def eval_batches(src: SplitSource, *, global_batch: int, clip: ClipSpec, clips: int, crops: int,
                 resize: str = 'short_side', process_index: int = 0, process_count: int = 1,
                 num_threads: int = 4, sampler: str = 'fixed', seed: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Every clip of the split exactly once across processes, all views of a clip together.

  `sampler` picks each view's frames (data/test_sampling.py; random ones seeded by (seed, index)).

  Process p takes clips p, p+P, ...; every process yields the same number of batches, padded with
  entries whose `index` is -1 and `mask` 0 (never dropped, never double counted). Views are uint8.
  """
  if global_batch % process_count:
    raise ValueError(f'eval batch {global_batch} is not divisible by {process_count} processes')
  local = global_batch // process_count
  n = len(src)
  per_process = math.ceil(n / process_count)
  num_batches = math.ceil(per_process / local)
  mine = list(range(process_index, n, process_count))
  mine += [-1] * (num_batches * local - len(mine))
  blank = None

  def load(i: int) -> dict[str, Any]:
    nonlocal blank
    if i < 0:
      if blank is None:
        blank = load(0)
      return dict({k: np.zeros_like(v) for k, v in blank.items()}, index=np.int32(-1), mask=np.float32(0))
    ex = parse(src.source[i])
    out = _common_fields(ex)
    picks = test_sampling.clip_indices(sampler, len(ex['frames']), clip.num_frames, clips, seed=seed, index=i)
    video = transforms.clip_views(lambda idx: transforms.decode_frames(ex['frames'], idx), len(ex['frames']),
                                  clip.num_frames, clip.image_size, clips, crops, resize, clip_indices=picks)
    # Views that land on the same frames (a video with fewer stored frames than clips x T) count once.
    repeated = len({tuple(p.tolist()) for p in picks}) < clips
    out.update(video=video, index=np.int32(i), mask=np.float32(1), repeated_clips=np.int32(repeated))
    if 'list_index' in ex:  # Built from a list (video_folder >= 1.1.0): its position there.
      out['list_index'] = np.int32(ex['list_index'])
    return out

  ds = grain.MapDataset.source(mine).map(load).batch(local, drop_remainder=True)
  yield from ds.to_iter_dataset(read_options(num_threads))
