"""The aggregation maths against hand computations, and the tables / CSV / plot built from runs."""
import csv

import numpy as np
import pytest

from msta_jax.data import synthetic
from msta_jax.tools import protocol_aggregate as ps
from msta_jax.train import evaluate


def test_base_to_novel_headline_is_the_hm_of_seed_means():
  assert evaluate.harmonic_mean(77.24, 65.86) == pytest.approx(71.0975, abs=1e-4)  # The authors' logs: 71.1.
  b = ps.base_to_novel({1: (78.0, 60.0), 2: (76.48, 71.72)})
  assert (b['base'], b['novel']) == (pytest.approx(77.24), pytest.approx(65.86))
  assert b['hm'] == pytest.approx(71.0975, abs=1e-4)
  # By hand: HM(78, 60) = 67.8261, HM(76.48, 71.72) = 74.0236; their mean differs from the headline.
  assert b['per_seed_hm'] == {1: pytest.approx(67.8261, abs=1e-4), 2: pytest.approx(74.0236, abs=1e-4)}
  assert b['mean_of_hms'] == pytest.approx(70.9248, abs=1e-4) and b['n'] == 2
  assert evaluate.harmonic_mean(0.0, 0.0) == 0.0


def test_zero_shot_is_mean_and_sample_std_over_splits():
  z = ps.over_splits({'split1': [55.0], 'split2': [56.0], 'split3': [57.5]})
  # mean 56.1667; squared deviations 1.3611 + 0.0278 + 1.7778 = 3.1667, / (3 - 1) -> sqrt = 1.2583.
  assert z['mean'] == pytest.approx(56.1667, abs=1e-4) and z['std'] == pytest.approx(1.2583, abs=1e-4)
  assert z['n'] == 3
  # Several training seeds: each split's seeds are averaged first.
  z = ps.over_splits({'split1': [54.0, 56.0], 'split2': [56.0, 56.0], 'split3': [57.0, 58.0]})
  assert z['splits'] == {'split1': 55.0, 'split2': 56.0, 'split3': 57.5}
  assert ps.sample_std([3.0]) is None and ps.sample_std([50.0, 52.0]) == pytest.approx(2 ** 0.5)


def test_numbers_a_method_cannot_give_stay_missing():
  """A linear probe scores no novel class (top1 None): no HM, never a zero."""
  b = ps.base_to_novel({1: (80.0, None), 2: (82.0, None)})
  assert (b['base'], b['novel'], b['hm'], b['mean_of_hms']) == (81.0, None, None, None)
  assert ps.over_splits({'s1': [None], 's2': [50.0]})['mean'] is None
  runs = [_run('base_to_novel', 'k400', 'linear_probe', _res({}, base_novel={'base': 80.0, 'novel': None}), seed=1)]
  rows = ps.summarize(runs)
  assert [r.value for r in rows if r.setting == 'seeds=1'] == [80.0, None, None, None]
  assert '| linear_probe | viclip_b16 | 1 | 80.0 | — | **—** | — |' in ps.markdown(rows)


def test_per_shot_table():
  t = ps.per_shot([('msta', 2, 50.0), ('msta', 2, 52.0), ('msta', 4, 60.0), ('fa', 4, 40.0)])
  assert t['msta'][2] == {'mean': 51.0, 'std': pytest.approx(1.41421, abs=1e-5), 'n': 2}
  assert t['msta'][4] == {'mean': 60.0, 'std': None, 'n': 1} and list(t['fa']) == [4]


def test_pooled_factor_metrics_count_every_video_once():
  names = synthetic.class_names()
  # List A: a twin pair (classes 0 and 1). top-1: v0 right, v1 wrong, v2 a tie resolved to class 0 (right),
  # v3 right -> 3/4. Pair accuracy: 1, 0, 0.5 (tie), 1 -> 2.5/4. The wrong pick shares shape and colour.
  a = {'logits': np.array([[2., 1.], [2., 1.], [1., 1.], [0., 3.]]), 'label': np.array([0, 1, 0, 1]),
       'classes': np.array(names[:2])}
  # List B: one class whose twin is in another list: counts for top-1 and appearance, not for pairs.
  b = {'logits': np.array([[1.], [1.]]), 'label': np.array([0, 0]), 'classes': np.array([names[8]])}
  from msta_jax.tools import demo_results
  out = ps.pooled_factor_metrics([a, b], demo_results._synthetic_factors)
  assert out['top1'] == pytest.approx(100 * 5 / 6)
  assert out['temporal_top1'] == pytest.approx(62.5)
  assert out['appearance_top1'] == pytest.approx(100.0)


def _run(protocol, dataset, method, results, shots=None, seed=0, tests=('test',), variant=''):
  return ps.Run(protocol, dataset, method, 'viclip_b16', variant, shots, seed, results, tuple(tests))


def _res(test: dict, **extra):
  return dict({'test': test, 'views': [10, 3], 'frames': 8, 'trainable_params': 1744000}, **extra)


def test_summarize_reports_each_protocol_with_the_paper_beside_it(tmp_path):
  runs = [_run('few_shot', 'hmdb51', 'msta', _res({'test': {'top1': v}}), shots=k, seed=s)
          for k, s, v in ((2, 0, 60.0), (2, 1, 62.0), (16, 0, 70.0))]
  runs += [_run('base_to_novel', 'ucf101', 'msta', _res({}, base_novel={'base': b, 'novel': n}), seed=s)
           for s, b, n in ((1, 78.0, 60.0), (2, 76.48, 71.72))]
  zs = {f'video_folder/{t}_vifi_zero_shot{d}:test_split{i}': {'top1': v + i}
        for t, d, v in (('hmdb51', '', 54.0), ('k600', '_mixed', 70.0)) for i in (1, 2, 3)}
  runs.append(_run('zero_shot', 'k400', 'msta', _res(zs), tests=tuple(zs)))
  runs.append(_run('supervised', 'k400', 'msta', _res({'val': {'top1': 81.0, 'top5': 95.0}}), tests=('val',)))
  rows = ps.summarize(runs)
  get = lambda **kw: [r for r in rows if all(getattr(r, k) == v for k, v in kw.items())]
  k2 = get(protocol='few_shot', setting='shots=2')[0]
  assert (k2.value, k2.std, k2.n, k2.paper) == (61.0, pytest.approx(2 ** 0.5), 2, 61.2)
  hm = get(protocol='base_to_novel', setting='seeds=1,2', metric='hm')[0]
  assert hm.value == pytest.approx(71.0975, abs=1e-4) and hm.paper == 82.9
  assert get(protocol='base_to_novel', metric='mean_of_hms')[0].value == pytest.approx(70.9248, abs=1e-4)
  k600 = get(protocol='zero_shot', setting='k600 (mixed)')[0]
  assert (k600.value, k600.std, k600.n, k600.paper) == (72.0, 1.0, 3, 74.5)
  assert get(protocol='zero_shot', setting='hmdb51')[0].paper == 55.8
  assert [r.value for r in get(protocol='supervised')] == [81.0, 95.0]
  assert get(protocol='supervised', metric='top5')[0].paper == 96.2

  md = ps.markdown(rows)
  assert '| paper (ViCLIP-B/16): msta | viclip_b16 | 61.2 | 70.4 |' in md
  assert '**71.1**' in md and '| 70.9 |' in md                      # HM of seed means, mean of per-seed HMs
  assert '| msta | viclip_b16 | k600 (mixed) | 72.0 ± 1.0 | test_split1 71.0, test_split2 72.0, ' in md
  assert '| 10x3 | 8 | 1,744,000 |' in md
  path = tmp_path / 'summary.csv'
  ps.write_csv(rows, str(path))
  lines = list(csv.DictReader(open(path)))
  assert lines[0]['protocol'] == 'few_shot' and set(lines[0]) == set(ps.CSV_FIELDS)
  assert ps.plot(rows, str(tmp_path / 'summary.png')) and (tmp_path / 'summary.png').stat().st_size > 1000


def test_zero_shot_targets():
  assert ps.zero_shot_target('video_folder/ucf101_generated_zero_shot:test_split2', 'k400') == ('ucf101', 'test_split2')
  assert ps.zero_shot_target('video_folder/k600_vifi_zero_shot_val_only:test_split1', 'k400') == (
      'k600 (val_only)', 'test_split1')
  assert ps.zero_shot_target('zs_test', 'synthetic') == ('synthetic', 'zs_test')


def _tss(*top1s):
  evals = [{'epoch': 5 * i, 'step': 25 * (5 * i + 1), 'top1': v, 'top5': v + 20} for i, v in enumerate(top1s)]
  return {'evaluations': evals, 'max': max(evals, key=lambda e: e['top1']), 'last': evals[-1], 'label': 'x'}


def test_authors_column_is_the_max_over_test_evaluations_and_says_so(tmp_path):
  tss = {'test': _tss(50.1, 70.4, 69.4)}
  runs = [_run('few_shot', 'hmdb51', 'msta', _res({'test': {'top1': 66.0}}, test_set_selection=tss), shots=16)]
  runs += [_run('base_to_novel', 'hmdb51', 'msta',
                _res({}, base_novel={'base': 70.0, 'novel': 50.0},
                     test_set_selection={'base_val': _tss(72.0, 75.0), 'novel_val': _tss(55.0, 52.0)}),
                seed=1, tests=('base_val', 'novel_val'))]
  assert ps.has_test_set_selection(runs)
  ours, theirs = ps.summarize(runs), ps.summarize(runs, 'authors')
  few = lambda rows: next(r.value for r in rows if r.protocol == 'few_shot')
  hm = lambda rows: next(r.value for r in rows if r.metric == 'hm' and r.setting.startswith('seeds='))
  assert (few(ours), few(theirs)) == (66.0, 70.4)
  assert hm(ours) == pytest.approx(2 * 70 * 50 / 120) and hm(theirs) == pytest.approx(2 * 75 * 55 / 130)
  assert 'Numbers shown: TEST-SET SELECTION' in ps.markdown(theirs, column='authors')
  assert 'held-out training videos' in ps.markdown(ours)
  assert ps.plot(theirs, str(tmp_path / 'a.png'), 'authors')
  plain = [_run('few_shot', 'hmdb51', 'msta', _res({'test': {'top1': 66.0}}), shots=16)]
  assert not ps.has_test_set_selection(plain)
  with pytest.raises(ValueError, match="no test-set evaluations of 'test' in this run"):
    ps.summarize(plain, 'authors')
