"""Checks a local copy of a dataset's videos against a split set: can each protocol run on it?

    reports = splits_check.check(splits.get_split_set('vifi', 'hmdb51'), '/data/hmdb51/videos')
    [(r.protocol, r.options, r.status) for r in reports]    # 'ok' | 'incomplete' | 'cannot run'

`python -m msta_jax.tools.splits check` prints these reports; its --probe passes a decoder here.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable

from msta_jax.data import locate
from msta_jax.data import splits


@dataclasses.dataclass
class SplitCheck:
  name: str
  list_path: str
  expected: int = 0
  found: int = 0
  missing: int = 0
  empty: int = 0
  undecodable: int = 0
  error: str | None = None  # The list itself could not be read.
  examples: list[str] = dataclasses.field(default_factory=list)  # A few missing/bad paths.

  @property
  def bad(self) -> int:
    return self.missing + self.empty + self.undecodable


@dataclasses.dataclass
class ProtocolCheck:
  protocol: str
  options: dict[str, int]
  definition: str | None
  splits: list[SplitCheck]
  model_selection: str
  status: str = 'ok'  # 'ok', 'incomplete' (runs, some videos absent) or 'cannot run'.
  reasons: list[str] = dataclasses.field(default_factory=list)


def check(split_set: splits.SplitSet, videos_dir: str, *, protocols: tuple[str, ...] | None = None,
          definitions: tuple[str, ...] | None = None, max_missing: float = 0.05,
          probe: Callable[[str], bool] | None = None) -> list[ProtocolCheck]:
  """Counts, for every split of every protocol option, the listed videos found under `videos_dir` (as
listed, or by file name in the folders of an official download, as the build finds them: locate.py).

  A protocol cannot run when a list (train or evaluated) is absent or unverified, finds no video, or
  misses more than `max_missing` of its videos (missing, empty or rejected by `probe`). `probe(path)`
  returns whether a file decodes; None checks presence and size only. Held-out splits never block a run.
  """
  state: dict[str, str] = {}
  finder = locate.Locator(videos_dir)

  def look(rel: str) -> str:
    if rel not in state:
      path = finder.find(rel)
      if path is None:
        state[rel] = 'missing'
      elif os.path.getsize(path) == 0:
        state[rel] = 'empty'
      else:
        state[rel] = 'ok' if probe is None or probe(path) else 'undecodable'
    return state[rel]

  reports = []
  for protocol in protocols or split_set.protocols():
    for definition in split_set.definitions(protocol):
      if definitions and definition and definition not in definitions:
        continue
      for options in split_set.option_grid(protocol, definition):
        ps = split_set.splits(protocol, definition=definition, **options)
        report = ProtocolCheck(protocol, options, definition, [], ps.model_selection)
        for split in ps:
          sc = SplitCheck(split.name, split.list_path)
          report.splits.append(sc)
          try:
            rows = split.entries()
          except splits.SplitFileError as e:
            sc.error = str(e)
          else:
            sc.expected = len(rows)
            for rel, _ in rows:
              verdict = look(rel)
              if verdict == 'ok':
                sc.found += 1
              else:
                setattr(sc, verdict, getattr(sc, verdict) + 1)
                if len(sc.examples) < 3:
                  sc.examples.append(f'{rel} ({verdict})')
          _judge(report, sc, split.name == 'heldout', max_missing, videos_dir)
        reports.append(report)
  return reports


def _judge(report: ProtocolCheck, sc: SplitCheck, heldout: bool, max_missing: float,
           videos_dir: str) -> None:
  if heldout:
    return
  if sc.error:
    report.status = 'cannot run'
    report.reasons.append(sc.error)
  elif sc.found == 0:
    report.status = 'cannot run'
    report.reasons.append(f'{sc.name}: none of the {sc.expected} videos found under {videos_dir}, as listed '
                          'or by file name in its subfolders (docs/splits.md, "Get the videos")')
  elif sc.bad > max_missing * sc.expected:
    report.status = 'cannot run'
    report.reasons.append(f'{sc.name}: {sc.bad} of {sc.expected} videos missing, empty or undecodable, '
                          f'more than max_missing={max_missing:g}')
  elif sc.bad and report.status == 'ok':
    report.status = 'incomplete'
