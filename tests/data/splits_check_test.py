"""Tests for msta_jax.data.splits_check: counts and verdicts per split, and what blocks a protocol
(the miniature repositories and fixtures of tests/data/splits_test.py)."""
from __future__ import annotations

import os

from msta_jax.data import splits
from msta_jax.data import splits_check
from msta_jax.tools import splits_fetch
from tests.data.splits_test import HMDB, _video, fetched, pinned, serve  # noqa: F401 (fixtures)


def _touch(videos: str, rel: str, data: bytes = b'\0') -> None:
  os.makedirs(os.path.dirname(os.path.join(videos, rel)), exist_ok=True)
  with open(os.path.join(videos, rel), 'wb') as f:
    f.write(data)


def test_check_counts_and_verdicts(fetched, tmp_path):
  videos = str(tmp_path / 'videos')
  for c in range(51):
    for j in range(30, 40):
      _touch(videos, _video(c, j))
  os.remove(os.path.join(videos, _video(3, 35)))  # In val1 and val2: one missing of 510 / 408.
  _touch(videos, _video(4, 36), b'')  # Empty.
  for c in range(51):  # val3 (videos 34-39) loses half of its videos.
    for j in (34, 35, 37):
      if os.path.exists(os.path.join(videos, _video(c, j))):
        os.remove(os.path.join(videos, _video(c, j)))
  ss = splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir'])
  reports = splits_check.check(ss, videos, protocols=('zero_shot',), probe=lambda p: not p.endswith('_39.avi'))
  got = {r.options['split']: (r.status, r.splits[0]) for r in reports}
  assert got[1][0] == 'cannot run'  # 51 undecodable (_39) + ... > 5% of 510.
  s1 = got[1][1]
  counts = (s1.expected, s1.found, s1.missing, s1.empty, s1.undecodable)
  assert counts == (510, 510 - 153 - 1 - 51, 153, 1, 51)
  reports = splits_check.check(ss, videos, protocols=('zero_shot',), max_missing=0.45)
  assert [r.status for r in reports] == ['incomplete', 'incomplete', 'cannot run']  # 30%, 38%, 50% bad.
  assert reports[2].reasons == [
      'test: 154 of 306 videos missing, empty or undecodable, more than max_missing=0.45']


def test_check_reports_unfetched_lists_and_class_folder_layouts(pinned, tmp_path):
  videos = str(tmp_path / 'videos')
  for c, name in enumerate(HMDB):
    for j in range(30, 40):
      _touch(videos, f'{name}/{_video(c, j)}')
  ss = splits.get_split_set('vifi', 'hmdb51', pinned['splits_dir'])
  [report] = splits_check.check(ss, videos, protocols=('zero_shot',))[:1]
  assert report.status == 'cannot run' and 'is missing (vifi set): run' in report.reasons[0]
  with serve(pinned['www']) as url:
    splits_fetch.fetch(pinned['splits_dir'], pinned=('vifi',), base_url=url, log=lambda s: None)
  report = splits_check.check(ss, videos, protocols=('zero_shot',))[0]  # Found by name, as the build does.
  assert report.status == 'ok' and report.splits[0].found == report.splits[0].expected == 510
  os.makedirs(tmp_path / 'elsewhere')
  report = splits_check.check(ss, str(tmp_path / 'elsewhere'), protocols=('zero_shot',))[0]
  assert report.status == 'cannot run' and report.splits[0].found == 0
  assert 'none of the 510 videos found under' in report.reasons[0] and 'by file name' in report.reasons[0]
