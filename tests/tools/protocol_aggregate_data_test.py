"""A subset or partial dataset is labelled in the protocol summary and never drawn beside the paper."""
from msta_jax.data import counts
from msta_jax.tools import protocol_aggregate as ps


def _data(stored: int, subset: bool) -> dict:
  train = {'listed': 8, 'stored': stored, 'missing': 0, 'quarantined': 8 - stored,
           'unusable_fraction': (8 - stored) / 8, 'stored_per_class': {'min': 1, 'max': 2},
           'classes_short': {'Archery': 1}} if stored < 8 else {
               'listed': 8, 'stored': 8, 'missing': 0, 'quarantined': 0, 'unusable_fraction': 0.0}
  test = {'listed': 10, 'stored': 10, 'missing': 0, 'quarantined': 0, 'unusable_fraction': 0.0}
  partial = stored < 8
  return {'splits': {'train': train, 'test': {'test': test}}, 'partial': partial, 'subset': subset,
          'comparable_with_paper': not (partial or subset)}


def _run(data: dict | None, shots: int = 2) -> ps.Run:
  results = {'test': {'test': {'top1': 50.0}}, 'views': [1, 1], 'frames': 8, 'trainable_params': 10}
  if data is not None:
    results['data'] = data
  return ps.Run('few_shot', 'ucf101', 'msta', 'viclip_b16', '', shots, 0, results, ('test',))


def test_describe_and_marker():
  d = _data(7, subset=True)
  assert counts.marker(d) == 'subset, partial' and counts.marker(_data(8, subset=False)) == ''
  assert counts.describe(d) == ('train 7/8 (0 missing, 1 quarantined), 1 classes short of 2; test test 10/10 '
                                '[subset, partial]')
  assert counts.marker(None) == '' and counts.describe(None) == ''


def test_subset_or_partial_runs_lose_the_paper_and_say_why(tmp_path):
  full = ps.summarize([_run(_data(8, subset=False))])
  assert full[0].dataset == 'ucf101' and full[0].paper == 86.1  # MSTA, UCF101, K=2 (msta.md).
  for data, mark in ((_data(7, subset=False), 'partial'), (_data(8, subset=True), 'subset'),
                     (_data(7, subset=True), 'partial, subset')):
    row, = ps.summarize([_run(data)])
    assert row.dataset == f'ucf101 [{mark}]' and row.paper is None
    md = ps.markdown([row])
    assert f'## few_shot — ucf101 [{mark}]' in md and ps.PAPER_LABEL + ':' not in md
    assert ps.plot([row], str(tmp_path / 'summary.png'))
  row, = ps.summarize([_run(_data(7, subset=True))])
  assert 'Data: train 7/8 (0 missing, 1 quarantined), 1 classes short of 2; test test 10/10 [subset, partial]' in (
      ps.markdown([row]))
  assert ps.summarize([_run(None)])[0].paper == 86.1  # Results from before the counts: as before.
