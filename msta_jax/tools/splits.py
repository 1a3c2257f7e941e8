"""Split sets on the command line: list, fetch, verify, generate and check (see docs/splits.md).

  python -m msta_jax.tools.splits list
  python -m msta_jax.tools.splits fetch [--pins=vifi,val_only_k600] [--local_copy=CLONE] [--base_url=URL]
  python -m msta_jax.tools.splits verify
  python -m msta_jax.tools.splits generate --dataset=hmdb51 --official=DIR
  python -m msta_jax.tools.splits generate --dataset=ucf101 --official=DIR --classes=Archery,Bowling,... \
      [--shots=2,4]                   # a class subset: the `subset` split set, never the protocol
  python -m msta_jax.tools.splits check --dataset=hmdb51 --videos_dir=DIR [--split_set=vifi] [--probe]

Every command reads and writes --splits_dir (alias --dest; default $MSTA_SPLITS_DIR, else
~/.cache/msta_jax/splits). `check` exits non-zero when a protocol cannot run on the local videos.
"""
from __future__ import annotations

import json
import os

from absl import app, flags

from msta_jax.data import decode
from msta_jax.data import splits
from msta_jax.data import splits_check
from msta_jax.data import splits_generate
from msta_jax.tools import splits_fetch

COMMANDS = ('list', 'fetch', 'verify', 'generate', 'check')

_SPLITS_DIR = flags.DEFINE_string(
    'splits_dir', None, 'Root of the split files (<dir>/vifi, <dir>/val_only_k600, <dir>/generated). '
    'Default: $MSTA_SPLITS_DIR, else ~/.cache/msta_jax/splits.')
flags.DEFINE_alias('dest', 'splits_dir')
_PINS = flags.DEFINE_list('pins', list(splits.PINNED), 'fetch: the pinned sets to fetch.')
_BASE_URL = flags.DEFINE_string('base_url', splits_fetch.DEFAULT_BASE_URL,
                                'fetch: files come from <base_url>/<owner>/<repo>/<commit>/<path>.')
_LOCAL_COPY = flags.DEFINE_string('local_copy', None, 'fetch: a clone of the source repository you already '
                                  'have; files are copied from it (and verified) instead of downloaded.')
# allow_override: tools/descriptions.py defines --dataset too, and tests import both into one registry.
_DATASET = flags.DEFINE_enum('dataset', None, splits.DATASETS, 'generate, check: the dataset.',
                             allow_override=True)
_OFFICIAL = flags.DEFINE_string('official', None, "generate: folder with the dataset's own split files.")
# allow_override: tools/descriptions.py defines --classes too (a string there as well).
flags.DEFINE_string('classes', None, 'generate: only these classes, comma-separated or a file (one name a '
                    'line, or a JSON list); writes the `subset` split set (datasets <dataset>_subset_<protocol>), '
                    'the first thing to try with a new dataset.', allow_override=True)
_SHOTS = flags.DEFINE_list('shots', None, 'generate: few-shot K values (default 2,4,8,16); fewer for small '
                           'subsets.')
_SPLIT_SET = flags.DEFINE_enum('split_set', 'vifi', splits.SPLIT_SETS, 'check: the split set.')
_VIDEOS_DIR = flags.DEFINE_string('videos_dir', None, 'check: the folder the list paths are relative to.')
_PROTOCOL = flags.DEFINE_list('protocol', None,
                              f'check: only these protocols ({", ".join(splits.PROTOCOLS)}).')
_DEFINITION = flags.DEFINE_list('definition', None, 'check: only these K600 zero-shot definitions '
                                f'({", ".join(splits.K600_DEFINITIONS)}).')
_PROBE = flags.DEFINE_bool('probe', False, 'check: also decode every listed video once (decode.probe, the '
                           'verdicts of a build) and count partial or rejected ones as undecodable, since a '
                           'build quarantines both. Slow on a whole dataset; `python -m msta_jax.tools.probe '
                           'DIR` does the same in parallel and says why.')
_MAX_MISSING = flags.DEFINE_float('max_missing', 0.05, 'check: largest fraction of a split that may be '
                                  'missing, empty or undecodable before its protocol cannot run.')


def _require(**values: object) -> None:
  absent = [name for name, v in values.items() if not v]
  if absent:
    raise app.UsageError(f'this command needs {" and ".join(f"--{n}" for n in absent)}')


def _opts(options: dict[str, int], definition: str | None) -> str:
  text = ' '.join(f'{k}={v}' for k, v in options.items())
  return f'{text} definition={definition}'.strip() if definition else text


def list_splits(splits_dir: str) -> list[str]:
  """One line per split of every set: counts come from the pins, or from the files where derived."""
  out = []
  sets = [('vifi', d) for d in splits.DATASETS]
  sets += [(kind, d) for kind in ('generated', 'subset') for d in splits.DATASETS
           if os.path.exists(os.path.join(splits_dir, kind, d, 'manifest.json'))]
  for name, dataset in sets:
    ss = splits.get_split_set(name, dataset, splits_dir)
    for protocol in ss.protocols():
      for definition in ss.definitions(protocol):
        for options in ss.option_grid(protocol, definition):
          ps = ss.splits(protocol, definition=definition, **options)
          head = f'{name:9} {dataset:6} {protocol:10} {_opts(options, definition):28}'
          for split in ps:
            count = split.count()
            n_cls = split.class_file.pin['classes']
            where = split.list_file.rel + ('' if split.available() else ' (absent)')
            out.append(f'{head} {split.name:9} {"-" if count is None else count:>7} videos  '
                       f'{split.class_list_name}:{n_cls:<4} {where}')
          if ps.heldout is None and ps.train is not None:
            out.append(f'{head} {"heldout":9} {"-":>7}         {ps.model_selection}')
  missing = [d for d in splits.DATASETS if ('generated', d) not in sets]
  if missing:
    out.append(f'generated: none yet for {", ".join(missing)} under {splits_dir} '
               '(python -m msta_jax.tools.splits generate --dataset=NAME --official=DIR)')
  return out


def _format_check(reports: list[splits_check.ProtocolCheck]) -> tuple[list[str], bool]:
  lines, ok = [], True
  for r in reports:
    lines.append(f'{r.protocol} {_opts(r.options, r.definition)}: {r.status}')
    for s in r.splits:
      if s.error:
        lines.append(f'  {s.name:9} unavailable: {s.error}')
        continue
      lines.append(f'  {s.name:9} expected {s.expected:7}  found {s.found:7}  missing {s.missing:6}  '
                   f'empty {s.empty:4}  undecodable {s.undecodable:4}' +
                   (f'  e.g. {", ".join(s.examples)}' if s.examples else ''))
    lines.append(f'  model selection: {r.model_selection}')
  blocked = [r for r in reports if r.status == 'cannot run']
  incomplete = sum(r.status == 'incomplete' for r in reports)
  lines.append(f'summary: {len(reports) - len(blocked) - incomplete} ok, {incomplete} incomplete, '
               f'{len(blocked)} cannot run')
  for r in blocked:
    ok = False
    lines.append(f'  CANNOT RUN {r.protocol} {_opts(r.options, r.definition)}: ' + ' | '.join(r.reasons))
  return lines, ok


def main(argv: list[str]) -> int:
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'give one command out of {", ".join(COMMANDS)}; got {argv[1:]}')
  command = argv[1]
  if command == 'generate':
    _require(dataset=_DATASET.value, official=_OFFICIAL.value)
  elif command == 'check':
    _require(dataset=_DATASET.value, videos_dir=_VIDEOS_DIR.value)
    if not os.path.isdir(_VIDEOS_DIR.value):
      raise app.UsageError(f'--videos_dir={_VIDEOS_DIR.value} is not a directory')
  try:
    return _run(command, _SPLITS_DIR.value or splits.default_splits_dir())
  except (splits.SplitFileError, ValueError, FileNotFoundError) as e:
    print(f'{command} failed: {e}')
    return 1


def _subset(spec: str | None) -> list[str] | None:
  """--classes: comma-separated names, or a file of one name a line or a JSON list."""
  if not spec:
    return None
  if os.path.isfile(spec):
    with open(spec, encoding='utf-8') as f:
      text = f.read()
    return json.loads(text) if text.lstrip().startswith('[') else [l.strip() for l in text.splitlines() if l.strip()]
  return [c.strip() for c in spec.split(',') if c.strip()]


def _run(command: str, splits_dir: str) -> int:
  if command == 'list':
    print('\n'.join(list_splits(splits_dir)))
  elif command == 'fetch':
    statuses = splits_fetch.fetch(splits_dir, pinned=tuple(_PINS.value), base_url=_BASE_URL.value,
                            local_copy=_LOCAL_COPY.value)
    print(f'{len(statuses)} files verified under {splits_dir}')
  elif command == 'verify':
    manifests = [splits.load_pinned(n, splits_dir) for n in splits.PINNED]
    manifests += [splits.load_generated(d, splits_dir, kind) for kind in ('generated', 'subset')
                  for d in splits.DATASETS if os.path.exists(os.path.join(splits_dir, kind, d, 'manifest.json'))]
    failed = 0
    for m in manifests:
      for s in splits_fetch.verify(m):
        failed += not s.ok
        print(f'{"ok  " if s.ok else "FAIL"} {s.path}' + ('' if s.ok else f': {s.detail}'))
    print(f'{failed} files failed verification' if failed else 'every file matches its pin')
    return int(bool(failed))
  elif command == 'generate':
    subset = _subset(flags.FLAGS['classes'].value)
    shots = tuple(int(k) for k in _SHOTS.value) if _SHOTS.value else splits_generate.SHOTS
    dest = splits_generate.generate(_DATASET.value, _OFFICIAL.value, splits_dir, subset=subset, shots=shots)
    what = 'generated' if subset is None else f'{len(subset)}-class subset'
    print(f'wrote the {what} {_DATASET.value} split set to {dest}')
    if subset is not None:
      print(f'build it with: python -m msta_jax.tools.build --dataset={_DATASET.value} --split_set=subset '
            '--protocol=few_shot --videos_dir=DIR --data_dir=DIR (docs/data.md)')
  else:
    ss = splits.get_split_set(_SPLIT_SET.value, _DATASET.value, splits_dir)
    reports = splits_check.check(ss, _VIDEOS_DIR.value, protocols=_PROTOCOL.value and tuple(_PROTOCOL.value),
                           definitions=_DEFINITION.value and tuple(_DEFINITION.value),
                           max_missing=_MAX_MISSING.value,
                           probe=decode.probe_ok if _PROBE.value else None)
    lines, ok = _format_check(reports)
    print(f'{ss.name} split set, {ss.dataset}, videos under {_VIDEOS_DIR.value}')
    print('\n'.join(lines))
    return 0 if ok else 1
  return 0


if __name__ == '__main__':
  app.run(main)
