"""Freezing: the ONLY place that decides which parameters train.

`config.freeze` is an ordered list of `(regex, 'trainable' | 'frozen')` matched with `re.fullmatch`
against '/'-joined parameter paths (e.g. `msta/video_7/down/kernel`, `visual/ln_post/scale`); the
first match wins and a parameter that matches no rule is an error, so nothing is frozen or trained by
accident. The labels feed `optax.partition`: AdamW on trainable leaves, `set_to_zero` on frozen ones,
so optimizer moments exist for trainable parameters only.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import optax
from flax import traverse_util

TRAINABLE, FROZEN = 'trainable', 'frozen'
Rules = Sequence[tuple[str, str]]


def _paths(tree: dict) -> dict[str, Any]:
  return {'/'.join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def check_rules(rules: Rules) -> list[tuple[re.Pattern, str]]:
  """The rules compiled; raises naming the first that is not (regex, 'trainable' | 'frozen')."""
  compiled = []
  for i, rule in enumerate(rules):
    if len(rule) != 2 or rule[1] not in (TRAINABLE, FROZEN):
      raise ValueError(f"config.freeze[{i}]={rule!r}; expected (regex, 'trainable' | 'frozen')")
    compiled.append((re.compile(rule[0]), rule[1]))
  return compiled


def param_labels(params: dict, rules: Rules) -> dict:
  """A tree like `params` holding 'trainable' or 'frozen' per leaf; raises on uncovered paths."""
  compiled = check_rules(rules)
  labels, uncovered = {}, []
  for path in _paths(params):
    label = next((lab for rx, lab in compiled if rx.fullmatch(path)), None)
    if label is None:
      uncovered.append(path)
    labels[path] = label
  if uncovered:
    raise ValueError(f'{len(uncovered)} parameters match no rule of config.freeze, e.g. {uncovered[:5]}; '
                     "end the rules with ('.*', 'frozen') or ('.*', 'trainable')")
  return traverse_util.unflatten_dict({tuple(k.split('/')): v for k, v in labels.items()})


def split(tree: dict, labels: dict) -> tuple[dict, dict]:
  """(trainable subtree, frozen subtree) of a tree with the structure of `labels`."""
  flat, flat_labels = traverse_util.flatten_dict(tree), traverse_util.flatten_dict(labels)
  parts = {TRAINABLE: {}, FROZEN: {}}
  for k, v in flat.items():
    parts[flat_labels[k]][k] = v
  return (traverse_util.unflatten_dict(parts[TRAINABLE]), traverse_util.unflatten_dict(parts[FROZEN]))


def merge(a: dict, b: dict) -> dict:
  """Union of two disjoint nested dicts."""
  fa, fb = traverse_util.flatten_dict(a), traverse_util.flatten_dict(b)
  overlap = fa.keys() & fb.keys()
  if overlap:
    raise ValueError(f'trees overlap at {sorted("/".join(k) for k in overlap)[:5]}')
  return traverse_util.unflatten_dict({**fa, **fb})


def make_optimizer(labels: dict, trainable_tx: optax.GradientTransformation) -> optax.GradientTransformation:
  return optax.partition({TRAINABLE: trainable_tx, FROZEN: optax.set_to_zero()}, labels)


def count(tree: dict) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def table(params: dict, labels: dict, depth: int = 2) -> str:
  """Trainable / frozen parameter counts per module (paths cut at `depth`), for logs and tools."""
  rows: dict[str, list[int]] = {}
  flat_labels = _paths(labels)
  for path, leaf in _paths(params).items():
    key = '/'.join(path.split('/')[:depth])
    row = rows.setdefault(key, [0, 0])
    row[0 if flat_labels[path] == TRAINABLE else 1] += int(np.prod(leaf.shape))
  width = max([len(k) for k in rows] + [6])
  lines = [f'{"module":<{width}}  {"trainable":>12}  {"frozen":>12}']
  for k in sorted(rows):
    lines.append(f'{k:<{width}}  {rows[k][0]:>12,}  {rows[k][1]:>12,}')
  total = [sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())]
  lines.append(f'{"total":<{width}}  {total[0]:>12,}  {total[1]:>12,}')
  return '\n'.join(lines)
