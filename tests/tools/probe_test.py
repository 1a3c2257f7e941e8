"""Tests for `python -m msta_jax.tools.probe` and `python -m msta_jax.tools.splits check --probe`."""
from __future__ import annotations

import json
import os
import shutil

from absl import flags
from absl.testing import flagsaver

from msta_jax.data import classes
from msta_jax.tools import probe
from msta_jax.tools import splits as splits_tool
from tests.data.decode_test import write_broken
from tests.data.decode_test import write_video


def _lines(text: str) -> list[dict]:
  return [json.loads(l) for l in text.splitlines()]


def test_probe_prints_one_json_line_per_file_then_a_summary(tmp_path, capsys):
  videos = tmp_path / 'videos'
  (videos / 'sub').mkdir(parents=True)
  expected = write_broken(str(videos))
  write_video(str(videos / 'sub' / 'good.webm'), frames=12)
  (videos / 'notes.txt').write_text('not a video: folders are searched by extension')
  extra = write_video(str(tmp_path / 'clip.mkv'), frames=9)
  assert probe.main(['probe', str(videos), extra, '--workers=2']) == 1
  *rows, last = _lines(capsys.readouterr().out)
  got = {os.path.relpath(r['path'], videos): (r['status'], r['reason']) for r in rows}
  assert got == {**expected, 'sub/good.webm': ('ok', ''), '../clip.mkv': ('ok', '')}
  frames = {os.path.basename(r['path']): r['frames'] for r in rows}
  assert (frames['good.webm'], frames['clip.mkv'], frames['one.mp4'], frames['cut.mkv']) == (12, 9, 1, 17)
  assert [r['path'] for r in rows] == sorted(r['path'] for r in rows)  # In order, though parallel.
  assert set(rows[0]) == {'path', 'status', 'reason', 'frames', 'duration', 'fps', 'detail'}
  assert last == {'summary': {'files': 8, 'ok': 2, 'partial': {'ends_early': 1}, 'rejected': {
      'empty': 1, 'no_video_stream': 1, 'too_short': 1, 'unreadable': 2}}}
  # min_frames is the build's threshold: 9 frames are too short for 10.
  assert probe.main(['probe', extra, '--min_frames=10']) == 1
  row = _lines(capsys.readouterr().out)[0]
  assert (row['status'], row['reason'], row['detail']) == ('rejected', 'too_short',
                                                           '9 frames, fewer than min_frames=10')
  assert probe.main(['probe', extra]) == 0


def test_probe_usage_errors(tmp_path, capsys):
  assert probe.main(['probe']) == 2
  assert probe.main(['probe', str(tmp_path / 'absent')]) == 2
  assert 'no such file or folder' in capsys.readouterr().err
  assert probe.main(['probe', str(tmp_path)]) == 1  # An empty folder: nothing to probe.
  assert 'no video files' in capsys.readouterr().err


def _run_splits_tool(*args: str) -> int:
  with flagsaver.flagsaver():
    return splits_tool.main(flags.FLAGS(['splits', *args]))


def test_splits_check_probe_counts_undecodable_videos(tmp_path, capsys):
  official, sd, videos = tmp_path / 'official', str(tmp_path / 'splits'), tmp_path / 'videos'
  official.mkdir()
  for c, name in enumerate(classes.names('hmdb51')):  # 16 train, 5 test videos per class, all 3 splits.
    for n in (1, 2, 3):
      (official / f'{name.replace(" ", "_")}_test_split{n}.txt').write_text(
          ''.join(f'h{c}_{j}.avi {1 if j < 16 else 2}\n' for j in range(21)))
  assert _run_splits_tool('generate', '--dataset=hmdb51', f'--official={official}', f'--splits_dir={sd}') == 0
  videos.mkdir()
  good = write_video(str(tmp_path / 'good.avi'), frames=10, width=32, height=24)
  for c in range(51):
    for j in range(16, 21):
      shutil.copy(good, videos / f'h{c}_{j}.avi')
  for c in range(20):  # 20 of 255 test videos (8%, over max_missing=5%) do not decode.
    (videos / f'h{c}_18.avi').write_bytes(b'RIFF' + bytes(range(200)))
  args = ('check', '--dataset=hmdb51', f'--videos_dir={videos}', '--split_set=generated',
          f'--splits_dir={sd}', '--protocol=zero_shot')
  assert _run_splits_tool(*args) == 0  # Present and non-empty is all a check without --probe sees.
  assert 'summary: 3 ok, 0 incomplete, 0 cannot run' in capsys.readouterr().out
  assert _run_splits_tool(*args, '--probe') == 1
  out = capsys.readouterr().out
  assert '  test      expected     255  found     235  missing      0  empty    0  undecodable   20' in out
  assert 'summary: 0 ok, 0 incomplete, 3 cannot run' in out
