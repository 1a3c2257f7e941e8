"""Builds a TFDS dataset of real videos (see docs/data.md, "Building datasets").

Your own lists (`path label` per line, or `path` alone with the class folder as the first path part;
paths relative to --videos_dir):

  python -m msta_jax.tools.build --name=NAME --videos_dir=DIR --split train=LIST --split test=LIST \
      --data_dir=OUT [--classes=FILE]

A named dataset: every list of one protocol of a split set (fetched with `python -m msta_jax.tools.splits
fetch`, or generated), with the class list each list indexes (full, base, novel, K600 split N):

  python -m msta_jax.tools.build --dataset=hmdb51 --protocol=few_shot [--split_set=vifi] \
      [--definition=mixed|val_only] [--splits_dir=DIR] --videos_dir=DIR --data_dir=OUT

Output: OUT/video_folder/<name>/1.1.0 (array_record files, metadata.json with class lists, split-set
record and storage settings, quarantine.json and quarantine.txt). Decoding runs in --workers processes
with a progress bar and ETA; bad videos are quarantined and the build goes on. Videos nested in class
folders as downloaded (UCF-101/<Class>/..., HMDB51's <class>/...) are found by file name.

Exit status: 0 when built; 1 when more than --max_missing (default 0.01) of any split's listed videos are
missing or unusable (named; absent ones stop the build before decoding, undecodable ones after it, and
training then refuses the dataset unless --config.data.allow_partial=True); 2 on usage errors.
"""
from __future__ import annotations

import fnmatch
import os
import sys
import time

from absl import flags
from etils import epath

from msta_jax import paths
from msta_jax.data import counts
from msta_jax.data import decode
from msta_jax.data import splits
from msta_jax.tools import cli

SHOW_FILES = 20  # Quarantined files printed at the end; the report lists all.


def _flags() -> flags.FlagValues:
  """A private flag registry: this module is re-imported in every spawned decoding worker and by tests
  next to other CLIs that define --dataset, --videos_dir or --splits_dir."""
  fv = flags.FlagValues()
  d = decode.StorageOptions()
  flags.DEFINE_string('name', None, 'Generic build: the dataset (config) name.', flag_values=fv)
  flags.DEFINE_multi_string('split', [], 'Generic build: NAME=LIST_FILE, repeated once per split.',
                            flag_values=fv)
  flags.DEFINE_string('classes', None, 'Generic build: class list (JSON list, index->name JSON, id,name '
                      'csv, UCF101 classInd.txt-style `<1-based id> <name>` lines, or a shipped dataset name). '
                      'Default: the ids found in the lists.', flag_values=fv)
  flags.DEFINE_enum('dataset', None, splits.DATASETS, 'Named build: the dataset.', flag_values=fv)
  flags.DEFINE_string('protocol', None, 'Named build: few_shot, base2novel, zero_shot or supervised.',
                      flag_values=fv)
  flags.DEFINE_enum('split_set', 'vifi', splits.SPLIT_SETS, 'Named build: the split set.',
                    flag_values=fv)
  flags.DEFINE_string('definition', None, 'Named build, K600 zero_shot: mixed (ViFi-CLIP, default for vifi) '
                      'or val_only (Open-VCLIP).', flag_values=fv)
  flags.DEFINE_string('splits_dir', None, 'Named build: root of the split files (default '
                      '$MSTA_SPLITS_DIR, else ~/.cache/msta_jax/splits).', flag_values=fv)
  flags.DEFINE_string('videos_dir', None, 'Folder the list paths are relative to.', flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'TFDS data dir to write to.', flag_values=fv)
  flags.DEFINE_integer('short_side', d.short_side, 'Resize so the shorter side has this many pixels '
                       '(never upscales; 0 keeps the size).', flag_values=fv)
  flags.DEFINE_integer('max_frames', d.max_frames, 'Store at most this many frames per video, evenly '
                       'spaced in time.', flag_values=fv)
  flags.DEFINE_float('target_fps', None, 'Also cap the stored frame rate (default: no cap).', flag_values=fv)
  flags.DEFINE_integer('min_frames', d.min_frames, 'Reject videos with fewer decoded frames.', flag_values=fv)
  flags.DEFINE_bool('keep_partial', d.keep_partial, 'Store partial (truncated) videos instead of '
                    'quarantining them; they stay listed in the report.', flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', d.jpeg_quality, 'JPEG quality of stored frames.', flag_values=fv)
  flags.DEFINE_integer('workers', 0, 'Decoding processes (0: one per core).', flag_values=fv)
  flags.DEFINE_float('timeout_s', decode.RESULT_TIMEOUT_S, 'Quarantine a video (error) when its decoding '
                     'takes longer than this (its process is killed and replaced: a hung decoder).', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Rebuild even if the dataset exists.', flag_values=fv)
  flags.DEFINE_bool('progress', True, 'Show a progress bar per split.', flag_values=fv)
  flags.DEFINE_float('max_missing', counts.MAX_MISSING, 'Largest fraction of any split\'s listed '
                     'videos that may be missing or unusable; more exits 1 naming them. K400/K600 copies '
                     'always lack some: raise it knowingly.', flag_values=fv)
  flags.DEFINE_bool('verbose', False, 'Show library INFO logs and full tracebacks.', flag_values=fv)
  return fv


class UsageError(ValueError):
  """Wrong or missing flags; the message names them."""


def _parse_splits(values: list[str]) -> dict[str, str]:
  out = {}
  for v in values:
    name, sep, path = v.partition('=')
    if not sep or not name or not path:
      raise UsageError(f'--split {v}: expected NAME=LIST_FILE')
    if name in out:
      raise UsageError(f'--split {name} is given twice')
    out[name] = path
  return out


def config_from_flags(fv: flags.FlagValues):
  """The VideoFolderConfig the flags ask for (imports TensorFlow)."""
  from msta_jax.data.builders import video_folder  # Lazy: TFDS builders import TensorFlow.
  if bool(fv.name) == bool(fv.dataset):
    raise UsageError('give either --name with --split (your own lists) or --dataset with --protocol')
  if fv.name:
    if fv.protocol or fv.definition:
      raise UsageError('--protocol and --definition are for --dataset builds')
    return video_folder.generic_config(fv.name, _parse_splits(fv.split), fv.classes)
  if fv.split or fv.classes:
    raise UsageError('--split and --classes are for --name builds: a named dataset takes its lists and '
                     'class lists from the split set')
  if not fv.protocol:
    raise UsageError(f'--dataset={fv.dataset} needs --protocol (few_shot, base2novel, zero_shot or '
                     'supervised, as the split set offers)')
  name = video_folder.config_name(fv.dataset, fv.protocol, fv.split_set, fv.definition)
  known = {c.name: c for c in video_folder.VideoFolder.BUILDER_CONFIGS}
  if name not in known:
    offered = sorted(n for n in known if n.startswith(f'{fv.dataset}_{fv.split_set}_'))
    raise UsageError(f'--dataset={fv.dataset} --protocol={fv.protocol} --split_set={fv.split_set}: no '
                     f'such dataset; this split set offers {offered}')
  return known[name]


def main(argv: list[str]) -> int:
  fv = _flags()
  if cli.print_help_if_asked(argv, __doc__, fv):
    return 0
  try:
    rest = fv(argv)
  except flags.Error as e:
    print(f'usage error: {e}\n{__doc__}', file=sys.stderr)
    return 2
  if len(rest) > 1:
    print(f'usage error: unexpected arguments {rest[1:]}\n{__doc__}', file=sys.stderr)
    return 2
  import tensorflow_datasets as tfds  # Lazy: TensorFlow only once the flags are right.
  from msta_jax.data.builders import video_folder  # Lazy: imports TensorFlow.
  try:
    for flag in ('videos_dir', 'data_dir'):
      if not fv[flag].value:
        raise UsageError(f'--{flag} is required')
    config = config_from_flags(fv)
    storage = decode.StorageOptions(
        short_side=fv.short_side or None, max_frames=fv.max_frames, target_fps=fv.target_fps,
        min_frames=fv.min_frames, keep_partial=fv.keep_partial, jpeg_quality=fv.jpeg_quality)
  except (UsageError, ValueError, FileNotFoundError) as e:
    print(f'usage error: {e}', file=sys.stderr)
    return 2
  tfds.disable_progress_bar()  # Ours (per split, with ETA and the quarantine count) replaces TFDS's.
  if not fv.verbose:
    cli.quiet_libraries()
  data_dir = paths.local_or_url(fv.data_dir)  # May be a gs:// URL: read and written through epath / TFDS.
  path = video_folder.dataset_dir(data_dir, config.name)
  if (epath.Path(path) / 'dataset_info.json').exists() and not fv.overwrite:
    print(f'{path} is built already; pass --overwrite to rebuild')
    return _over_max_missing(video_folder.load(data_dir, config.name).info.metadata)
  parent = epath.Path(path).parent
  leftovers = sorted(os.fspath(p) for p in (parent.iterdir() if parent.is_dir() else [])
                     if fnmatch.fnmatch(p.name, f'incomplete.*_{video_folder.VERSION}'))
  if leftovers:  # A killed build (TFDS cleans up after Python-level errors and Ctrl-C itself).
    print(f'an earlier build of {config.name} was killed before it finished ({", ".join(leftovers)}: delete '
          'them); TFDS cannot resume a build, so this one starts over (docs/data.md, "Interrupted builds")')
  start = time.time()
  try:
    builder = video_folder.build(config, fv.videos_dir, data_dir, storage=storage, workers=fv.workers,
                                 splits_dir=fv.splits_dir, progress=fv.progress, overwrite=fv.overwrite,
                                 timeout_s=fv.timeout_s, max_missing=fv.max_missing)
  except (splits.SplitFileError, FileNotFoundError, ValueError) as e:
    if fv.verbose:
      raise
    print(f'build failed: {e}', file=sys.stderr)
    return 1
  lines = (epath.Path(path) / 'quarantine.txt').read_text(encoding='utf-8').splitlines()
  files = [l for l in lines if '\t' in l]  # One line per quarantined file, after the counts.
  print('\n'.join([l for l in lines if '\t' not in l] + files[:SHOW_FILES]))
  if len(files) > SHOW_FILES:
    print(f'... and {len(files) - SHOW_FILES} more files in quarantine.txt')
  print(f'built {builder.info.full_name} in {time.time() - start:.0f} s at {path}; quarantine report: '
        f'{os.path.join(path, "quarantine.json")} and quarantine.txt')
  return _over_max_missing(builder.info.metadata)


def _over_max_missing(meta) -> int:
  """1 (after naming them) when the build left more than --max_missing of a split unusable."""
  over = dict((meta or {}).get('over_max_missing') or {})
  for message in over.values():
    print(f'build incomplete: {message}', file=sys.stderr)
  if over:
    print('The dataset is stored, but training refuses it unless --config.data.allow_partial=True (results '
          'are then marked partial). Fix or replace the videos and rebuild with --overwrite.', file=sys.stderr)
  return int(bool(over))


if __name__ == '__main__':
  cli.quiet_tensorflow(sys.argv, onednn_banner=True)  # TensorFlow only reads and writes records here.
  cli.run(main)
