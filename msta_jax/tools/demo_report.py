"""Prints the embedded demo's table from demo_results.json and checks its known answer.

The known answer, in every row group where both ran (same protocol, shots, seed, split):
frame_average within 15 points of chance on the temporal pairs, and msta at least 20 points above
frame_average. Exit status 1 when it does not show.
"""
from __future__ import annotations

import json
import sys

from absl import app, flags


COLUMNS = ('protocol', 'method', 'split', 'top1', 'temporal_top1', 'appearance_top1', 'hm')


def _fmt(v) -> str:
  return '-' if v is None else f'{v:.1f}' if isinstance(v, float) else str(v)


def table(rows: list[dict]) -> str:
  lines = [' | '.join(COLUMNS), ' | '.join('---' for _ in COLUMNS)]
  for r in sorted(rows, key=lambda r: (r['protocol'], r.get('split') or '', r['method'])):
    lines.append(' | '.join(_fmt(r.get(c)) for c in COLUMNS))
  return '\n'.join(lines)


def known_answer(rows: list[dict]) -> list[tuple[bool, str]]:
  """(ok, message) per group holding both frame_average and msta."""
  groups: dict[tuple, dict[str, dict]] = {}
  for r in rows:
    groups.setdefault((r['protocol'], r.get('shots'), r.get('seed'), r.get('split')), {})[r['method']] = r
  out = []
  for key, by_method in sorted(groups.items(), key=lambda kv: str(kv[0])):
    if 'frame_average' not in by_method or 'msta' not in by_method:
      continue
    fa, msta = by_method['frame_average']['temporal_top1'], by_method['msta']['temporal_top1']
    chance = by_method['frame_average'].get('temporal_chance') or 50.0
    ok = abs(fa - chance) <= 15 and msta >= fa + 20
    out.append((ok, f'{key}: frame_average {fa:.1f} (chance {chance:.0f}), msta {msta:.1f}'))
  return out


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (required flags would otherwise bind every
  other tool's flag parsing in the same process)."""
  global _RESULTS, _SECONDS
  _RESULTS = flags.DEFINE_string('results', None, 'demo_results.json written by launch/run_protocol.py.', required=True)
  _SECONDS = flags.DEFINE_integer('seconds', None, 'Wall time of the demo, printed with the table.')


def main(argv: list[str]) -> None:
  del argv
  rows = json.load(open(_RESULTS.value))
  print(table(rows))
  checks = known_answer(rows)
  for ok, msg in checks:
    print(('PASS ' if ok else 'FAIL ') + msg)
  if _SECONDS.value is not None:
    print(f'demo wall time: {_SECONDS.value // 60} min {_SECONDS.value % 60} s')
  if not checks or not all(ok for ok, _ in checks):
    print('the known answer did not show (see the rows above)', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
