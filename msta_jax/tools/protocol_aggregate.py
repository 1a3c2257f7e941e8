"""Aggregates finished protocol runs the way the literature reports them; tables, CSV and plots.

- Few-shot: top-1 per method and K (mean over training seeds when there are several).
- Base-to-novel: the headline is the harmonic mean of the SEED-AVERAGED base and novel top-1, as the
  MSTA authors' logs compute it (HM(77.24, 65.86) = 71.1); the mean of the per-seed HMs is printed beside
  it, since papers differ and the two are not equal (the HM is concave).
- Zero-shot: per target dataset, mean +- sample standard deviation (ddof=1) over its splits, as
  FROSTER quotes ViFi-CLIP (51.3 +- 0.6); with several training seeds each split's top-1 is first
  averaged over seeds.
- Fully supervised: top-1 and top-5.

Which test number of a run (`column`): 'selected' (default) is the checkpoint chosen on held-out
training videos, each test video scored once (results.json `test`); 'authors' is the MSTA authors' way,
the maximum over the test evaluations made during training (results.json `test_set_selection`, recipe
`authors`): test-set selection, optimistic. Every table and plot says which one it shows.

The paper's numbers (msta.md: MSTA on ViCLIP-B/16) are printed beside ours, labelled `paper
(ViCLIP-B/16)`, never mixed into our columns. A test list a method cannot score (a linear probe has no
weights for novel classes: top1 None in results.json) stays None through every aggregate it enters,
never a zero. Everything here is plain Python and numpy; the per-video metrics and the harmonic mean are
evaluation's own (msta_jax/train/evaluate.py), so a summary computes them exactly as a run does.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from msta_jax import files
from msta_jax.data import counts
from msta_jax.train import evaluate

PAPER_LABEL = 'paper (ViCLIP-B/16)'
# msta.md, top-1 % (supervised: top-1 and top-5). Keys: (protocol, dataset, method); values per K (few-shot),
# the HM (base-to-novel), per target (zero-shot) or per metric (supervised).
PAPER: dict[tuple[str, str, str], Any] = {
    ('few_shot', 'hmdb51', 'msta'): {2: 61.2, 4: 62.3, 8: 67.1, 16: 70.4},
    ('few_shot', 'ucf101', 'msta'): {2: 86.1, 4: 90.2, 8: 92.7, 16: 94.8},
    ('few_shot', 'ssv2', 'msta'): {2: 9.1, 4: 10.4, 8: 13.3, 16: 17.5},
    ('base_to_novel', 'k400', 'msta'): 72.0,
    ('base_to_novel', 'hmdb51', 'msta'): 66.3,
    ('base_to_novel', 'ucf101', 'msta'): 82.9,
    ('base_to_novel', 'ssv2', 'msta'): 18.9,
    ('base_to_novel', 'k400', 'zero_shot'): 65.9,   # The frozen ViCLIP, zero-shot, on the same lists.
    ('base_to_novel', 'hmdb51', 'zero_shot'): 54.9,
    ('base_to_novel', 'ucf101', 'zero_shot'): 75.3,
    ('base_to_novel', 'ssv2', 'zero_shot'): 9.1,
    # ViFi-CLIP's K600 splits ('mixed'): the paper compares with ViFi-CLIP's 71.2 on them.
    ('zero_shot', 'k400', 'msta'): {'hmdb51': 55.8, 'ucf101': 78.7, 'k600 (mixed)': 74.5},
    ('supervised', 'k400', 'msta'): {'top1': 82.2, 'top5': 96.2},
}
PROTOCOLS = ('few_shot', 'base_to_novel', 'zero_shot', 'supervised')
COLUMNS = {
    'selected': 'each run\'s checkpoint selected on held-out training videos, every test video scored once',
    'authors': 'TEST-SET SELECTION (the MSTA authors\' reporting): per run, the maximum over its test evaluations '
               'during training; optimistic, not comparable with the held-out-selected numbers',
}


# --------------------------------------------------------------------------------------------------
# The maths.


def mean(values: Sequence[float | None]) -> float | None:
  """The mean; None when any value is None (a number that does not exist) or there are none."""
  if not values or any(v is None for v in values):
    return None
  return sum(values) / len(values)


def sample_std(values: Sequence[float | None]) -> float | None:
  """Standard deviation with ddof=1 (what "mean +- std over splits" means in the literature); None
  below two values, where it is undefined."""
  m = mean(values)
  if m is None or len(values) < 2:
    return None
  return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def base_to_novel(per_seed: Mapping[int, tuple[float | None, float | None]]) -> dict[str, Any]:
  """{seed: (base top-1, novel top-1)} -> base, novel (seed means), hm = HM(base, novel) (the headline),
  mean_of_hms, per-seed HMs, n."""
  seeds = sorted(per_seed)
  base = mean([per_seed[s][0] for s in seeds])
  novel = mean([per_seed[s][1] for s in seeds])
  hms = {s: evaluate.harmonic_mean(*per_seed[s]) for s in seeds}
  return {'base': base, 'novel': novel, 'hm': evaluate.harmonic_mean(base, novel),
          'mean_of_hms': mean(list(hms.values())), 'per_seed_hm': hms, 'n': len(seeds)}


def over_splits(per_split: Mapping[str, Sequence[float | None]]) -> dict[str, Any]:
  """{split: [top-1 per training seed]} -> mean and sample std over the splits of the seed means."""
  values = {s: mean(v) for s, v in sorted(per_split.items())}
  return {'mean': mean(list(values.values())), 'std': sample_std(list(values.values())), 'n': len(values),
          'splits': values}


def per_shot(rows: Iterable[tuple[str, int, float]]) -> dict[str, dict[int, dict[str, Any]]]:
  """[(group, K, top-1)] (one per run) -> {group: {K: {mean, std, n}}} over the runs of each K."""
  acc: dict[str, dict[int, list[float]]] = {}
  for group, shots, top1 in rows:
    acc.setdefault(group, {}).setdefault(shots, []).append(top1)
  return {g: {k: {'mean': mean(v), 'std': sample_std(v), 'n': len(v)} for k, v in sorted(by.items())}
          for g, by in acc.items()}


def pooled_factor_metrics(parts: Sequence[Mapping[str, Any]], factors_of) -> dict[str, float]:
  """top1 / temporal_top1 / appearance_top1 (%) over the videos of several test lists together, each
  scored against its own class list (base-to-novel: base and novel test videos as one population).

  parts: per list, arrays `logits` [N, C], `label` [N] and `classes` [C] (a saved logits .npz).
  factors_of(classes) -> per-class dicts with colour, shape and `twin` (local id or -1), the format of
  msta_jax.train.evaluate.factor_metrics, whose per-list values are weighted here by the videos each
  metric counts.
  """
  sums: dict[str, float] = {}
  counts: dict[str, int] = {}
  for p in parts:
    logits, labels = np.asarray(p['logits']), np.asarray(p['label'])
    factors = factors_of([str(c) for c in p['classes']])
    twin = np.array([f.get('twin', -1) for f in factors])
    weights = {'top1': len(labels), 'appearance_top1': len(labels), 'temporal_top1': int((twin[labels] >= 0).sum())}
    values = dict(evaluate.factor_metrics(logits, labels, factors), top1=evaluate.topk(logits, labels, 1))
    for k, v in values.items():
      if k in weights and weights[k]:
        sums[k] = sums.get(k, 0.0) + v * weights[k]
        counts[k] = counts.get(k, 0) + weights[k]
  out = {k: sums[k] / counts[k] for k in sums}
  if counts.get('temporal_top1'):
    out['temporal_videos'] = counts['temporal_top1']
  return out


# --------------------------------------------------------------------------------------------------
# Runs -> rows.


@dataclasses.dataclass
class Run:
  """One finished member run: what it was (from the runner's member.json) and its results.json."""
  protocol: str
  dataset: str
  method: str
  backbone: str
  variant: str             # '' or the short hash of extra overrides / arguments (runs are not comparable).
  shots: int | None
  seed: int
  results: dict[str, Any]
  test_splits: tuple[str, ...]


@dataclasses.dataclass
class Row:
  """One number of the summary (a summary.csv line)."""
  protocol: str
  dataset: str
  method: str
  backbone: str
  variant: str
  setting: str             # 'shots=16', 'seeds=1,2,3', 'seed=2', 'hmdb51', 'hmdb51 test_split1', ''.
  metric: str
  value: float | None      # None: the method cannot score this list (results.json top1 None).
  std: float | None
  n: int
  paper: float | None
  views: str
  frames: int | None
  trainable_params: int | None
  data: str = ''           # counts.describe of results.json `data`: stored / listed per split, subset, partial.


def _group(run: Run) -> tuple[str, str, str, str, str]:
  return run.protocol, run.dataset, run.method, run.backbone, run.variant


def _views(results: Mapping[str, Any]) -> str:
  views = results.get('views') or []
  return 'x'.join(str(v) for v in views)


def zero_shot_target(split_key: str, own_dataset: str) -> tuple[str, str]:
  """('hmdb51', 'test_split1') from 'video_folder/hmdb51_vifi_zero_shot:test_split1'; K600 carries its
  split definition ('k600 (mixed)'), since the two definitions are not comparable; a plain split name
  is a split of the run's own dataset."""
  if ':' not in split_key:
    return own_dataset, split_key
  folder, split = split_key.split(':', 1)
  config = folder.rstrip('/').split('/')[-1]
  target = config.split('_')[0]
  for definition in ('mixed', 'val_only'):
    if config.endswith('_' + definition):
      target = f'{target} ({definition})'
  return target, split


def test_metric(results: Mapping[str, Any], split: str, metric: str, column: str = 'selected') -> float | None:
  """A run's `metric` on test split `split` in `column` (see the module docstring)."""
  if column == 'selected':
    return results['test'][split][metric]
  if column != 'authors':
    raise ValueError(f'column={column!r}; allowed: {tuple(COLUMNS)}')
  found = results.get('test_set_selection', {}).get(split)
  if found is None:
    raise ValueError(f'no test-set evaluations of {split!r} in this run (train with recipe=authors, or '
                     '--config.eval.test_every_epochs=5, for the authors\' column)')
  return found['max'][metric] if found['max'] is not None else None


def has_test_set_selection(runs: Sequence[Run]) -> bool:
  return bool(runs) and all('test_set_selection' in r.results for r in runs)


def _base_novel(run: Run, column: str) -> tuple[float | None, float | None]:
  if column == 'selected':
    return run.results['base_novel']['base'], run.results['base_novel']['novel']
  base, novel = run.test_splits[:2]  # The configs list the base split first (config.eval.base_novel).
  return test_metric(run.results, base, 'top1', column), test_metric(run.results, novel, 'top1', column)


def summarize(runs: Sequence[Run], column: str = 'selected') -> list[Row]:
  """Every number the summary reports, grouped by (protocol, dataset, method, backbone, variant)."""
  groups: dict[tuple, list[Run]] = {}
  for run in runs:
    groups.setdefault(_group(run), []).append(run)
  rows: list[Row] = []
  for key in sorted(groups, key=lambda k: (PROTOCOLS.index(k[0]) if k[0] in PROTOCOLS else 9,) + k):
    protocol, dataset, method, backbone, variant = key
    members = sorted(groups[key], key=lambda r: (r.shots or 0, r.seed))
    first = members[0].results
    paper = PAPER.get((protocol, dataset, method))
    marks = sorted({m for r in members for m in counts.marker(r.results.get('data')).split(', ') if m})
    if marks:  # A class subset or a partial dataset: labelled everywhere, never beside the paper's numbers.
      dataset, paper = f'{dataset} [{", ".join(marks)}]', None

    def row(setting: str, metric: str, value: float, std=None, n=1, paper_value=None, res=first) -> Row:
      return Row(protocol, dataset, method, backbone, variant, setting, metric, value, std, n, paper_value,
                 _views(res), res.get('frames'), res.get('trainable_params'), counts.describe(res.get('data')))

    if protocol == 'few_shot':
      table = per_shot((key, r.shots, test_metric(r.results, r.test_splits[0], 'top1', column)) for r in members)[key]
      for shots, s in table.items():
        res = next(r.results for r in members if r.shots == shots)
        rows.append(row(f'shots={shots}', 'top1', s['mean'], s['std'], s['n'],
                        paper.get(shots) if paper else None, res))
    elif protocol == 'base_to_novel':
      per_seed = {r.seed: _base_novel(r, column) for r in members}
      b = base_to_novel(per_seed)
      setting = 'seeds=' + ','.join(str(s) for s in sorted(per_seed))
      rows += [row(setting, 'base', b['base'], n=b['n']), row(setting, 'novel', b['novel'], n=b['n']),
               row(setting, 'hm', b['hm'], n=b['n'], paper_value=paper),
               row(setting, 'mean_of_hms', b['mean_of_hms'], n=b['n'])]
      for seed, (base, novel) in sorted(per_seed.items()):
        rows += [row(f'seed={seed}', 'base', base), row(f'seed={seed}', 'novel', novel),
                 row(f'seed={seed}', 'hm', b['per_seed_hm'][seed])]
    elif protocol == 'zero_shot':
      by_target: dict[str, dict[str, list[float]]] = {}
      for r in members:
        for split_key in r.test_splits:
          target, split = zero_shot_target(split_key, dataset)
          value = test_metric(r.results, split_key, 'top1', column)
          by_target.setdefault(target, {}).setdefault(split, []).append(value)
      for target, per_split in by_target.items():
        z = over_splits(per_split)
        rows.append(row(target, 'top1', z['mean'], z['std'], z['n'], paper.get(target) if paper else None))
        rows += [row(f'{target} {split}', 'split_top1', v, n=len(per_split[split]))
                 for split, v in z['splits'].items()]
    elif protocol == 'supervised':
      for metric in ('top1', 'top5'):
        values = [test_metric(r.results, r.test_splits[0], metric, column) for r in members]
        rows.append(row('', metric, mean(values), sample_std(values), len(values),
                        paper.get(metric) if paper else None))
    else:
      raise ValueError(f'unknown protocol {protocol!r}; known: {PROTOCOLS}')
  return rows


# --------------------------------------------------------------------------------------------------
# Writing.

CSV_FIELDS = [f.name for f in dataclasses.fields(Row)]


def write_csv(rows: Sequence[Row], path: str) -> None:
  """Written whole (msta_jax.files: also to a gs:// URL)."""
  text = io.StringIO(newline='')
  w = csv.DictWriter(text, CSV_FIELDS)
  w.writeheader()
  for r in rows:
    d = dataclasses.asdict(r)
    w.writerow({k: ('' if v is None else round(v, 4) if isinstance(v, float) else v) for k, v in d.items()})
  files.write_atomic(path, text.getvalue())


def _num(v: float | None, std: float | None = None) -> str:
  if v is None:
    return '—'
  return f'{v:.1f} ± {std:.1f}' if std is not None else f'{v:.1f}'


def _who(r: Row) -> str:
  return f'{r.method}' + (f' [{r.variant}]' if r.variant else '')


def _params(n: int | None) -> str:
  return '—' if n is None else f'{n:,}'


def markdown(rows: Sequence[Row], title: str = 'Protocol summary', column: str = 'selected') -> str:
  """summary.md: one table per protocol and dataset, the paper's numbers in their own labelled cells."""
  out = [f'# {title}', '', f'Numbers shown: {COLUMNS[column]}.', '',
         f'Top-1 % unless noted. `{PAPER_LABEL}` is MSTA as published (msta.md), not a result of ours; ± is the '
         'sample std (ddof=1) over the runs or splits counted in n. A [hash] marks runs with extra overrides.', '']
  sections: dict[tuple[str, str], list[Row]] = {}
  for r in rows:
    sections.setdefault((r.protocol, r.dataset), []).append(r)
  for (protocol, dataset), rs in sections.items():
    out += [f'## {protocol} — {dataset}', '']
    out += _SECTION[protocol](rs) + ['']
    # Videos short of the lists (every split's counts are in summary.csv's `data` column).
    out += [f'Data: {d}' for d in sorted({r.data for r in rs if '(' in r.data or '[' in r.data})]
    out += [''] if out[-1] != '' else []
  return '\n'.join(out)


def _groups(rs: Sequence[Row]) -> dict[tuple, list[Row]]:
  g: dict[tuple, list[Row]] = {}
  for r in rs:
    g.setdefault((r.method, r.backbone, r.variant), []).append(r)
  return g


def _few_shot_md(rs: Sequence[Row]) -> list[str]:
  shots = sorted({int(r.setting.split('=')[1]) for r in rs})
  head = ['method', 'backbone'] + [f'K={k}' for k in shots] + ['views', 'frames', 'trainable params']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for (method, backbone, _), g in _groups(rs).items():
    by = {int(r.setting.split('=')[1]): r for r in g}
    cells = [_who(g[0]), backbone] + [_num(by[k].value, by[k].std) + (f' (n={by[k].n})' if by[k].n > 1 else '')
                                      if k in by else '—' for k in shots]
    lines.append('| ' + ' | '.join(cells + [g[0].views, str(g[0].frames), _params(g[0].trainable_params)]) + ' |')
    if any(r.paper is not None for r in g):
      paper = [_num(by[k].paper) if k in by else '—' for k in shots]
      lines.append('| ' + ' | '.join([f'{PAPER_LABEL}: {method}', 'viclip_b16'] + paper + ['', '', '']) + ' |')
  return lines


def _b2n_md(rs: Sequence[Row]) -> list[str]:
  head = ['method', 'backbone', 'seeds', 'base', 'novel', 'HM of seed means', 'mean of per-seed HMs',
          f'{PAPER_LABEL} HM', 'views', 'frames', 'trainable params']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  detail = []
  for (method, backbone, _), g in _groups(rs).items():
    m = {r.metric: r for r in g if r.setting.startswith('seeds=')}
    lines.append('| ' + ' | '.join([_who(g[0]), backbone, m['hm'].setting[6:], _num(m['base'].value),
                                    _num(m['novel'].value), f"**{_num(m['hm'].value)}**",
                                    _num(m['mean_of_hms'].value), _num(m['hm'].paper), g[0].views,
                                    str(g[0].frames), _params(g[0].trainable_params)]) + ' |')
    per_seed: dict[str, dict[str, float]] = {}
    for r in g:
      if r.setting.startswith('seed='):
        per_seed.setdefault(r.setting[5:], {})[r.metric] = r.value
    detail += [f'| {_who(g[0])} | {backbone} | {s} | {_num(v["base"])} | {_num(v["novel"])} | {_num(v["hm"])} |'
               for s, v in per_seed.items()]
  return lines + ['', 'Per seed:', '', '| method | backbone | seed | base | novel | HM |',
                 '|---|---|---|---|---|---|'] + detail


def _zero_shot_md(rs: Sequence[Row]) -> list[str]:
  head = ['method', 'backbone', 'target', 'top-1 mean ± std', 'splits', f'{PAPER_LABEL}', 'views', 'frames',
          'trainable params']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for (method, backbone, _), g in _groups(rs).items():
    for t in (r for r in g if r.metric == 'top1'):
      splits = [r for r in g if r.metric == 'split_top1' and r.setting.startswith(t.setting + ' ')]
      per = ', '.join(f'{r.setting[len(t.setting) + 1:]} {_num(r.value)}' for r in splits)
      lines.append('| ' + ' | '.join([_who(t), backbone, t.setting, _num(t.value, t.std), per or '—',
                                      _num(t.paper), t.views, str(t.frames), _params(t.trainable_params)]) + ' |')
  return lines


def _supervised_md(rs: Sequence[Row]) -> list[str]:
  head = ['method', 'backbone', 'top-1', 'top-5', f'{PAPER_LABEL} top-1 / top-5', 'views', 'frames',
          'trainable params']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for (method, backbone, _), g in _groups(rs).items():
    m = {r.metric: r for r in g}
    paper = '—' if m['top1'].paper is None else f"{_num(m['top1'].paper)} / {_num(m['top5'].paper)}"
    lines.append('| ' + ' | '.join([_who(g[0]), backbone, _num(m['top1'].value, m['top1'].std),
                                    _num(m['top5'].value, m['top5'].std), paper, g[0].views, str(g[0].frames),
                                    _params(g[0].trainable_params)]) + ' |')
  return lines


_SECTION = {'few_shot': _few_shot_md, 'base_to_novel': _b2n_md, 'zero_shot': _zero_shot_md,
            'supervised': _supervised_md}


def plot(rows: Sequence[Row], path: str, column: str = 'selected') -> str | None:
  """One PNG with a panel per protocol and dataset: top-1 vs K (few-shot, the paper dashed), base /
  novel / HM bars (base-to-novel), mean ± std bars per target (zero-shot), top-1 / top-5 (supervised).
  Returns the path, or None when there is nothing to plot."""
  import matplotlib  # Lazy: only plotting needs it, and the backend must be chosen before pyplot loads.
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  sections: dict[tuple[str, str], list[Row]] = {}
  for r in rows:
    sections.setdefault((r.protocol, r.dataset), []).append(r)
  if not sections:
    return None
  fig, axes = plt.subplots(1, len(sections), figsize=(5.5 * len(sections), 4), squeeze=False)
  for ax, ((protocol, dataset), rs) in zip(axes[0], sections.items()):
    groups = _groups(rs)
    if protocol == 'few_shot':
      for (method, backbone, variant), g in groups.items():
        g = sorted(g, key=lambda r: int(r.setting.split('=')[1]))
        ks = [int(r.setting.split('=')[1]) for r in g]
        ax.errorbar(ks, [math.nan if r.value is None else r.value for r in g], yerr=[r.std or 0 for r in g],
                    marker='o', capsize=3,
                    label=f'{method} ({backbone}{", " + variant if variant else ""})')
        if any(r.paper is not None for r in g):
          ax.plot(ks, [r.paper for r in g], 'k--', marker='x', label=f'{PAPER_LABEL}: {method}')
      ax.set_xscale('log', base=2)
      ticks = sorted({int(r.setting.split('=')[1]) for r in rs})
      ax.set_xticks(ticks)
      ax.set_xticklabels([str(k) for k in ticks])
      ax.set_xlabel('shots per class (K)')
    else:
      labels, ours, err, paper = [], [], [], []
      for (method, backbone, variant), g in groups.items():
        for r in g:
          if protocol == 'base_to_novel' and not r.setting.startswith('seeds=') or r.metric == 'mean_of_hms':
            continue
          if protocol == 'zero_shot' and r.metric == 'split_top1':
            continue
          name = r.setting if protocol == 'zero_shot' else r.metric
          labels.append(f'{method}\n{name}')
          ours.append(math.nan if r.value is None else r.value)
          err.append(r.std or 0)
          paper.append(r.paper)
      x = range(len(labels))
      ax.bar(x, ours, yerr=err, capsize=3, label='ours')
      px = [i for i, p in zip(x, paper) if p is not None]
      if px:
        ax.scatter(px, [p for p in paper if p is not None], color='k', marker='_', s=400, zorder=3,
                   label=PAPER_LABEL)
      ax.set_xticks(list(x))
      ax.set_xticklabels(labels, fontsize=7)
    ax.set_title(f'{protocol} — {dataset}')
    ax.set_ylabel('top-1 %' if protocol != 'supervised' else '%')
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  fig.suptitle('test-set selection (the authors\' reporting: max over test evaluations)' if column == 'authors'
               else 'checkpoint selected on held-out training videos', fontsize=9)
  fig.tight_layout()
  png = io.BytesIO()
  fig.savefig(png, dpi=110, format='png')
  plt.close(fig)
  files.write_atomic(path, png.getvalue())  # Also to a gs:// URL.
  return path
