"""The demo report's known-answer check: margin, exact chance, binomial p-value on clip pairs."""
import math

from msta_jax.tools import demo_report


def _row(method, temporal, videos=1536):
  return {'protocol': 'few_shot', 'method': method, 'shots': 16, 'seed': 1, 'split': 'few_shot_test',
          'top1': 40.0, 'temporal_top1': temporal, 'appearance_top1': 70.0, 'temporal_chance': 50.0,
          'temporal_videos': videos}


def test_known_answer_passes_and_fails_on_the_numbers():
  ok = demo_report.known_answer([_row('frame_average', 50.0), _row('msta', 79.2), _row('zero_shot', 50.0)])
  assert [o for o, _ in ok] == [True]
  assert 'p = ' in ok[0][1] and '768 clip pairs' in ok[0][1]
  assert not demo_report.known_answer([_row('frame_average', 50.0), _row('msta', 74.9)])[0][0]   # < +25
  assert not demo_report.known_answer([_row('frame_average', 50.1), _row('msta', 90.0)])[0][0]   # fa != 50
  # +25 points on 8 test videos (4 pairs) is not significant: p = 1/16 at best.
  assert not demo_report.known_answer([_row('frame_average', 50.0, 8), _row('msta', 100.0, 8)])[0][0]
  assert not demo_report.known_answer([_row('frame_average', 50.0), _row('msta', 90.0, None)])[0][0]
  assert demo_report.known_answer([_row('msta', 90.0)]) == []  # Nothing to compare.


def test_binomial_tail_known_values():
  assert demo_report.binomial_tail(0, 10) == 1.0 and demo_report.binomial_tail(11, 10) == 0.0
  assert math.isclose(demo_report.binomial_tail(4, 4), 1 / 16)
  assert math.isclose(demo_report.binomial_tail(8, 10), (45 + 10 + 1) / 1024)
  # Symmetric around n/2: P(X >= 6) + P(X >= 5) = 1 for n = 10.
  assert math.isclose(demo_report.binomial_tail(6, 10) + demo_report.binomial_tail(5, 10), 1.0)
  # 75% of 768 pairs: far beyond any sensible bound, and no underflow to a negative or NaN.
  assert 0.0 < demo_report.binomial_tail(576, 768) < 1e-40


def test_pair_p_value_counts_pairs_not_videos():
  trials, successes, p = demo_report.pair_p_value(75.0, 1536)
  assert (trials, successes) == (768, 576)
  assert p == demo_report.binomial_tail(576, 768)


def test_table_lists_methods():
  text = demo_report.table([_row('msta', 79.2), _row('frame_average', 50.0)])
  assert 'msta' in text and '79.2' in text and '1536' in text


def test_axis_table_lists_rows_that_learnt_order():
  rows = [dict(_row('msta', 88.0), temporal_by_axis={'horizontal': 99.5, 'vertical': 99.0, 'orbit': 56.5,
                                                      'size': 100.0}),
          dict(_row('frame_average', 50.0), temporal_by_axis={a: 50.0 for a in ('horizontal', 'orbit')})]
  text = demo_report.axis_table(rows)
  assert text.splitlines()[0] == 'protocol | method | horizontal | vertical | orbit | size'
  assert 'few_shot | msta | 99.5 | 99.0 | 56.5 | 100.0' in text and 'frame_average' not in text
  assert demo_report.axis_table([_row('msta', 88.0)]) == ''
