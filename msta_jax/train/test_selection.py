"""The authors' way of reporting: score the TEST splits while training and report the maximum.

MSTA's code base (ViFi-CLIP `main.py`) validates on the test list after epoch e (0-based) when
e % SAVE_FREQ == 0 or e is the last, and logs "Max accuracy" over those evaluations; the paper reports
that maximum (HMDB K=16: eleven evaluations, 50.1 .. 70.4, last 69.4, reported 70.4). That picks the
checkpoint on the test set, so it is reported apart from the honest result (held-out selection), with a
label that says so. On only with `config.eval.test_every_epochs` > 0 (recipe `authors`).
"""
from __future__ import annotations

import math
from typing import Any

LABEL = ('test-set selection (the MSTA authors\' reporting): the maximum over evaluations of the TEST split '
         'during training; optimistic, not comparable with the held-out-selected result')


def eval_steps(every_epochs: float, steps_per_epoch: int, total_steps: int) -> dict[int, int]:
  """{step after which to score the test splits: 0-based epoch index}: after epoch e when
  e % every_epochs == 0 or e is the last epoch (ViFi-CLIP's rule); {} when every_epochs <= 0."""
  if every_epochs <= 0 or total_steps <= 0:
    return {}
  if every_epochs != int(every_epochs):
    raise ValueError(f'config.eval.test_every_epochs={every_epochs}: a whole number of epochs (the authors: 5)')
  epochs = math.ceil(total_steps / steps_per_epoch)
  return {min((e + 1) * steps_per_epoch, total_steps): e for e in range(epochs)
          if e % int(every_epochs) == 0 or e == epochs - 1}


def summary(evaluations: list[dict[str, Any]]) -> dict[str, Any]:
  """Per test split: every evaluation (epoch, step, top1, top5), the maximum top-1 (first of ties, as
  ViFi-CLIP's running max keeps it) and the last."""
  out: dict[str, Any] = {}
  for split in dict.fromkeys(e['split'] for e in evaluations):
    rows = [{k: e[k] for k in ('epoch', 'step', 'top1', 'top5')} for e in evaluations if e['split'] == split]
    scored = [r for r in rows if r['top1'] is not None]
    best = max(scored, key=lambda r: r['top1']) if scored else None
    out[split] = {'evaluations': rows, 'max': best, 'last': rows[-1], 'label': LABEL}
  return out


def evaluate_tests(evaluator, params, test_srcs: dict, views: tuple[int, int], *, epoch: int,
                   step: int) -> list[dict[str, Any]]:
  """One evaluation of every test split with the current parameters (`evaluator`: train/evaluate.py's)."""
  out = []
  for split, src in test_srcs.items():
    res = evaluator.run(params, src, views=views)
    out.append({'split': split, 'epoch': epoch, 'step': step, 'top1': res['top1'], 'top5': res['top5']})
  return out
