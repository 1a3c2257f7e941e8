"""The synthetic demo's rows: DIR/demo_results.json, one row per finished run and test split.

The protocol runner writes it for runs on the synthetic dataset; msta_jax/tools/demo_report.py prints
the table from it and checks the known answer. A base-to-novel row pools the base and novel test
videos from the saved per-video logits, so its temporal-pair accuracy counts every video once.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from msta_jax import files
from msta_jax import paths
from msta_jax.data import synthetic
from msta_jax.tools import protocol_aggregate

SYNTHETIC_B2N = ('b2n_base_test', 'b2n_novel_test')


class RunMember(Protocol):
  """What a row needs of a protocol member (protocol_run.Member)."""
  protocol: str
  method: str
  shots: int | None
  seed: int
  workdir: str

  def finished(self) -> bool:
    ...


def _synthetic_factors(classes: Sequence[str]) -> list[dict[str, int]]:
  """Per class of a synthetic class list: colour, shape, motion axis (index into synthetic.AXES) and the
  local id of its time-reversed twin (global id XOR 1, msta_jax.data.synthetic), -1 when the twin is
  not in the list."""
  glob = {n: i for i, n in enumerate(synthetic.class_names())}
  local = {glob[c]: i for i, c in enumerate(classes)}
  out = []
  for c in classes:
    colour, shape, motion = synthetic.factors(glob[c])
    out.append({'colour': colour, 'shape': shape, 'axis': motion // 2,
                'twin': local.get(synthetic.twin(glob[c]), -1)})
  return out


def temporal_by_axis(workdir: str, splits: Sequence[str]) -> dict[str, float] | None:
  """Temporal-pair accuracy (%) per motion axis over the videos of `splits` (saved logits), or None
  when a list was not scored. Shows WHICH pairs a method learnt (orbit direction, a position x
  velocity product, is the hardest for a frame-wise backbone; see configs/synthetic.py). Each axis is
  the pooled metric of protocol_aggregate over that axis's videos."""
  parts = []
  for split in splits:
    path = os.path.join(workdir, 'logits', f'{split}.npz')
    if not paths.resolve(path).is_file():
      return None
    with np.load(paths.readable(path)) as z:
      parts.append({k: z[k] for k in ('logits', 'label', 'classes')})
  out = {}
  for a, name in enumerate(synthetic.AXES):
    subset = []
    for p in parts:
      axis = np.array([f['axis'] for f in _synthetic_factors([str(c) for c in p['classes']])])
      keep = axis[p['label']] == a
      subset.append(dict(p, logits=p['logits'][keep], label=p['label'][keep]))
    pooled = protocol_aggregate.pooled_factor_metrics(subset, _synthetic_factors)
    if 'temporal_top1' in pooled:
      out[name] = pooled['temporal_top1']
  return out


def demo_rows(member: RunMember) -> list[dict[str, Any]]:
  """demo_results.json rows of one finished synthetic run, in %: one per test split; base-to-novel
  gives one row whose top1 / temporal_top1 / appearance_top1 count base and novel test videos
  together (from the saved per-video logits), with base_top1, novel_top1 and hm beside them."""
  results = json.loads((paths.resolve(member.workdir) / 'results.json').read_text(encoding='utf-8'))
  base = {'protocol': member.protocol, 'method': member.method, 'shots': member.shots, 'seed': member.seed}
  if member.protocol == 'base_to_novel':
    pooled: dict[str, float] = {}
    if all(results['test'][s]['top1'] is not None for s in SYNTHETIC_B2N):  # Else a list has no scores.
      parts = []
      for split in SYNTHETIC_B2N:
        with np.load(paths.readable(os.path.join(member.workdir, 'logits', f'{split}.npz'))) as z:
          parts.append({k: z[k] for k in ('logits', 'label', 'classes')})
      pooled = protocol_aggregate.pooled_factor_metrics(parts, _synthetic_factors)
    bn = results['base_novel']
    return [dict(base, split='+'.join(SYNTHETIC_B2N), top1=pooled.get('top1'),
                 temporal_top1=pooled.get('temporal_top1'), appearance_top1=pooled.get('appearance_top1'),
                 temporal_chance=50.0 if 'temporal_top1' in pooled else None,
                 temporal_videos=pooled.get('temporal_videos'),
                 temporal_by_axis=temporal_by_axis(member.workdir, SYNTHETIC_B2N),
                 base_top1=bn['base'], novel_top1=bn['novel'], hm=bn['hm'])]
  return [dict(base, split=split, top1=r['top1'], temporal_top1=r.get('temporal_top1'),
               appearance_top1=r.get('appearance_top1'), temporal_chance=r.get('temporal_chance'),
               temporal_videos=r.get('temporal_videos'),
               temporal_by_axis=temporal_by_axis(member.workdir, (split,)),
               base_top1=None, novel_top1=None, hm=None)
          for split, r in results['test'].items()]


def write_demo_results(workdir: str, members: Sequence[RunMember]) -> str:
  """Merges this invocation's finished synthetic runs into DIR/demo_results.json, keyed by (protocol,
  method, shots, seed, split): rows of other protocols written there before are kept."""
  path = os.path.join(workdir, 'demo_results.json')
  key = lambda r: (r['protocol'], r['method'], r['shots'], r['seed'], r['split'])
  rows = {}
  if paths.resolve(path).is_file():
    rows = {key(r): r for r in json.loads(paths.resolve(path).read_text(encoding='utf-8'))}
  for m in members:
    if m.finished():
      rows.update({key(r): r for r in demo_rows(m)})
  order = lambda k: tuple('' if v is None else str(v).zfill(6) if isinstance(v, int) else v for v in k)
  files.write_json(path, [rows[k] for k in sorted(rows, key=order)], indent=1, sort_keys=True)
  return path
