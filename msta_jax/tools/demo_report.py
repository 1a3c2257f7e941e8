"""Prints the embedded demo's table from demo_results.json and checks its known answer.

The known answer, in every row group where both ran (same protocol, shots, seed, split):
- frame_average scores EXACTLY chance (50.0) on the temporal pairs: its frames are averaged, and a
  twin's clip is the same frames reversed, so this is a structural check, not a statistical one;
- msta scores at least MARGIN (25) points above frame_average, and
- msta beats chance significantly: one-sided binomial p-value below ALPHA (1e-6). The test videos come
  in pairs (a clip and its exact reversal share their frames), so the test counts a PAIR as one trial:
  n = temporal_videos / 2 trials, k = floor(successes / 2); this is conservative for correlated pairs.
Exit status 1 when it does not show.
"""
from __future__ import annotations

import json
import math
import sys

from absl import app, flags


COLUMNS = ('protocol', 'method', 'split', 'top1', 'temporal_top1', 'appearance_top1', 'hm', 'temporal_videos')
MARGIN = 25.0   # points msta must score above frame_average on the temporal pairs
ALPHA = 1e-6    # bound on msta's one-sided binomial p-value against chance


def _fmt(v) -> str:
  return '-' if v is None else f'{v:.1f}' if isinstance(v, float) else str(v)


def table(rows: list[dict]) -> str:
  lines = [' | '.join(COLUMNS), ' | '.join('---' for _ in COLUMNS)]
  for r in sorted(rows, key=lambda r: (r['protocol'], r.get('split') or '', r['method'])):
    lines.append(' | '.join(_fmt(r.get(c)) for c in COLUMNS))
  return '\n'.join(lines)


def axis_table(rows: list[dict]) -> str:
  """Temporal-pair accuracy per motion axis, one line per row that has it (methods that learn order)."""
  axes = sorted({a for r in rows for a in (r.get('temporal_by_axis') or {})},
                key=lambda a: ('horizontal', 'vertical', 'orbit', 'size').index(a)
                if a in ('horizontal', 'vertical', 'orbit', 'size') else 9)
  lines = [' | '.join(('protocol', 'method') + tuple(axes)), ' | '.join('---' for _ in range(2 + len(axes)))]
  for r in sorted(rows, key=lambda r: (r['protocol'], r['method'])):
    by_axis = r.get('temporal_by_axis') or {}
    if by_axis and any(v != 50.0 for v in by_axis.values()):
      lines.append(' | '.join([r['protocol'], r['method']] + [_fmt(by_axis.get(a)) for a in axes]))
  return '\n'.join(lines) if len(lines) > 2 else ''


def binomial_tail(k: int, n: int) -> float:
  """P(X >= k) for X ~ Binomial(n, 1/2), exact (log-space sum; fine for n in the thousands)."""
  if k <= 0:
    return 1.0
  if k > n:
    return 0.0
  logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
          for i in range(k, n + 1)]
  top = max(logs)
  return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def pair_p_value(top1: float, videos: int) -> tuple[int, int, float]:
  """(trials, successes, p) of the pair test in the module docstring, from a temporal top-1 in %."""
  trials = videos // 2
  successes = int(math.floor(round(top1 / 100 * videos, 6) / 2))
  return trials, successes, binomial_tail(successes, trials)


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
    videos = by_method['msta'].get('temporal_videos')
    if not videos:
      out.append((False, f'{key}: no temporal_videos count in the msta row (rerun the demo to rewrite '
                         'demo_results.json)'))
      continue
    trials, successes, p = pair_p_value(msta, videos)
    ok = fa == chance and msta >= fa + MARGIN and p < ALPHA
    out.append((ok, f'{key}: frame_average {fa:.1f} (must be exactly {chance:.1f}), msta {msta:.1f} '
                    f'(must be >= {fa + MARGIN:.1f}); {trials} clip pairs, {successes} right, '
                    f'one-sided binomial p = {p:.1e} (must be < {ALPHA:.0e})'))
  return out


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (required flags would otherwise bind every
  other tool's flag parsing in the same process)."""
  global _RESULTS, _SECONDS
  _RESULTS = flags.DEFINE_string('results', None, 'demo_results.json written by launch/run_protocol.py.', required=True)
  _SECONDS = flags.DEFINE_integer('seconds', None, 'Wall time of the demo, printed with the table.')


def report(rows: list[dict], seconds: int | None = None) -> bool:
  """Prints the table, the per-axis table and a verdict per row group; True when the known answer shows."""
  print(table(rows))
  axes = axis_table(rows)
  if axes:
    print('\ntemporal-pair top-1 by motion axis (rows not at exactly 50.0):')
    print(axes)
  checks = known_answer(rows)
  for ok, msg in checks:
    print(('PASS ' if ok else 'FAIL ') + msg)
  if seconds is not None:
    print(f'demo wall time: {seconds // 60} min {seconds % 60} s')
  if not checks or not all(ok for ok, _ in checks):
    print('the known answer did not show (see the rows above)', file=sys.stderr)
    return False
  return True


def main(argv: list[str]) -> None:
  del argv
  with open(_RESULTS.value, encoding='utf-8') as f:
    rows = json.load(f)
  if not report(rows, _SECONDS.value):
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
