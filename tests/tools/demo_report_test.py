"""The demo report's known-answer check."""
from msta_jax.tools import demo_report


def _row(method, temporal, split='few_shot_test'):
  return {'protocol': 'few_shot', 'method': method, 'shots': 16, 'seed': 1, 'split': split, 'top1': 40.0,
          'temporal_top1': temporal, 'appearance_top1': 70.0, 'temporal_chance': 50.0}


def test_known_answer_passes_and_fails_on_the_numbers():
  ok = demo_report.known_answer([_row('frame_average', 50.0), _row('msta', 79.2), _row('zero_shot', 50.0)])
  assert ok == [(True, "('few_shot', 16, 1, 'few_shot_test'): frame_average 50.0 (chance 50), msta 79.2")]
  assert not demo_report.known_answer([_row('frame_average', 50.0), _row('msta', 69.9)])[0][0]   # < +20
  assert not demo_report.known_answer([_row('frame_average', 66.0), _row('msta', 90.0)])[0][0]   # fa > chance+15
  assert demo_report.known_answer([_row('msta', 90.0)]) == []  # Nothing to compare.


def test_table_lists_every_row():
  text = demo_report.table([_row('msta', 79.2), _row('frame_average', 50.0)])
  assert text.count('\n') == 3 and 'msta | few_shot_test | 40.0 | 79.2 | 70.0 | -' in text
