"""Tests for the `python -m msta_jax.tools.splits` commands: list, fetch, verify, generate, check."""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
from absl import app, flags
from absl.testing import flagsaver

from msta_jax.data import classes
from msta_jax.data import splits
from msta_jax.tools import splits as tool

HMDB = classes.names('hmdb51')


def run(*args: str) -> int:
  """Runs one command in-process, as `python -m msta_jax.tools.splits *args` would."""
  with flagsaver.flagsaver():
    argv = flags.FLAGS(['splits', *args])
    return tool.main(argv)


def test_list_prints_every_split_with_published_counts(tmp_path, capsys):
  assert run('list', f'--splits_dir={tmp_path}') == 0
  lines = capsys.readouterr().out.splitlines()
  assert sum(l.startswith('vifi ') for l in lines) == 102  # Splits and held-out notes of every option.
  rows = {tuple(l.split()[:5]): l for l in lines if l.startswith('vifi ')}
  assert ' 816 videos  full:51 ' in rows[('vifi', 'hmdb51', 'few_shot', 'shots=16', 'train')]
  k600 = rows[('vifi', 'k600', 'zero_shot', 'split=3', 'definition=val_only')]
  assert ' 7261 videos  k600_zs_split3:160 ' in k600
  assert ' 9933 videos  novel:200 ' in rows[('vifi', 'k400', 'base2novel', 'seed=2', 'novel_val')]
  assert 'last checkpoint' in rows[('vifi', 'ucf101', 'few_shot', 'shots=2', 'heldout')]
  assert lines[-1].startswith('generated: none yet for hmdb51, ucf101, ssv2, k400, k600')


def test_module_runs_as_a_script(tmp_path):
  out = subprocess.run([sys.executable, '-m', 'msta_jax.tools.splits', 'list', f'--splits_dir={tmp_path}'],
                       capture_output=True, text=True, check=True, timeout=60).stdout
  assert 'datasets_splits/k600_splits/ZS_split3_K600_eval.txt (absent)' in out


def _official_hmdb(d: str) -> None:
  """testTrainMulti_7030_splits: videos 0-19 train, 20-24 test, in every split."""
  os.makedirs(d)
  for c, name in enumerate(HMDB):
    for n in (1, 2, 3):
      with open(os.path.join(d, f'{name.replace(" ", "_")}_test_split{n}.txt'), 'w') as f:
        f.write(''.join(f'h{c}_{j}.avi {1 if j < 20 else 2}\n' for j in range(25)))


def test_generate_list_and_check(tmp_path, capsys):
  sd, videos = str(tmp_path / 'splits'), tmp_path / 'videos'
  _official_hmdb(str(tmp_path / 'official'))
  assert run('generate', '--dataset=hmdb51', f'--official={tmp_path / "official"}', f'--splits_dir={sd}') == 0
  assert f'wrote the generated hmdb51 split set to {sd}/generated/hmdb51' in capsys.readouterr().out
  run('list', f'--splits_dir={sd}')
  rows = {tuple(l.split()[:5]): l for l in capsys.readouterr().out.splitlines()}
  assert ' 102 videos  full:51 ' in rows[('generated', 'hmdb51', 'few_shot', 'shots=2', 'train')]
  held = rows[('generated', 'hmdb51', 'few_shot', 'shots=2', 'heldout')]
  assert ' 204 videos  full:51 ' in held  # 20 training videos per class, 16 in the 16-shot list.
  assert ' 125 videos  novel:25 ' in rows[('generated', 'hmdb51', 'base2novel', 'seed=1', 'novel_val')]
  videos.mkdir()
  for c in range(51):
    for j in range(20, 25):
      (videos / f'h{c}_{j}.avi').write_bytes(b'\0')
  args = ('check', '--dataset=hmdb51', f'--videos_dir={videos}', '--split_set=generated',
          f'--splits_dir={sd}')
  assert run(*args, '--protocol=zero_shot') == 0
  out = capsys.readouterr().out
  assert 'summary: 3 ok, 0 incomplete, 0 cannot run' in out
  assert '  test      expected     255  found     255  missing      0' in out
  (videos / 'h7_21.avi').write_bytes(b'')
  assert run(*args, '--protocol=zero_shot') == 0
  assert 'summary: 0 ok, 3 incomplete, 0 cannot run' in capsys.readouterr().out
  assert run(*args, '--protocol=zero_shot', '--max_missing=0') == 1
  out = capsys.readouterr().out
  assert 'CANNOT RUN zero_shot split=2: test: 1 of 255 videos missing, empty or undecodable' in out
  # Few-shot training videos are absent: every option cannot run, and says why.
  assert run(*args, '--protocol=few_shot,base2novel') == 1
  out = capsys.readouterr().out
  assert 'summary: 0 ok, 0 incomplete, 7 cannot run' in out
  assert 'CANNOT RUN few_shot shots=16: train: none of the 816 videos found' in out


# ---------------------------------------------------------------------------------------------------
# fetch and verify, against a mini repository served on 127.0.0.1.


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args) -> None:
    del args


@contextlib.contextmanager
def serve(directory: str):
  handler = functools.partial(_QuietHandler, directory=directory)
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True).start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()


def _pin(data: bytes) -> dict:
  return {'git_blob': splits.git_blob_id(data), 'sha256': splits.sha256(data), 'bytes': len(data),
          'lines': data.count(b'\n'), 'classes': 2, 'role': 'test'}


@pytest.fixture
def mini(tmp_path, monkeypatch):
  content = {
      'vifi': ('o/ViFi-CLIP', 'c1', {'labels/x.csv': b'id,name\r\n0,a\r\n1,b\r\n',
                                     'lists/x.txt': b'a.avi 0\nb.avi 1\n'}),
      'val_only_k600': ('o/Open-VCLIP', 'c2', {'z/t.csv': b'val/a/x.mp4,0\nval/b/y.mp4,1\n'})}
  assets = tmp_path / 'assets'
  assets.mkdir()
  for name, (repo, commit, files) in content.items():
    manifest = {'name': name, 'source': {'repo': repo, 'commit': commit}, 'files': {}, 'class_lists': {},
                'protocols': {}}
    for rel, data in files.items():
      path = tmp_path / 'www' / repo / commit / rel
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_bytes(data)
      manifest['files'][rel] = _pin(data)
    if name == 'val_only_k600':
      manifest['files']['z/t.txt'] = {**_pin(b'val/x.mp4 0\nval/y.mp4 1\n'), 'derived_from': 'z/t.csv'}
    (assets / f'{name}.json').write_text(json.dumps(manifest))
  monkeypatch.setattr(splits, '_ASSETS', str(assets))
  return tmp_path


def test_fetch_then_verify(mini, capsys):
  sd = str(mini / 'splits')
  with serve(str(mini / 'www')) as url:
    assert run('fetch', f'--dest={sd}', f'--base_url={url}') == 0
  assert capsys.readouterr().out.splitlines()[-1] == f'4 files verified under {sd}'
  with open(os.path.join(sd, 'val_only_k600', 'z', 't.txt')) as f:
    assert f.read() == 'val/x.mp4 0\nval/y.mp4 1\n'
  assert run('verify', f'--splits_dir={sd}') == 0
  assert capsys.readouterr().out.splitlines()[-1] == 'every file matches its pin'
  path = os.path.join(sd, 'vifi', 'lists', 'x.txt')
  with open(path, 'w') as f:
    f.write('a.avi 1\nb.avi 0\n')
  assert run('verify', f'--splits_dir={sd}') == 1
  out = capsys.readouterr().out
  bad, good = splits.sha256(b'a.avi 1\nb.avi 0\n'), splits.sha256(b'a.avi 0\nb.avi 1\n')
  assert f'FAIL {path}: {path} does not match its pin: sha256 {bad} (pinned {good})' in out
  assert out.splitlines()[-1] == '1 files failed verification'


def test_fetch_failure_exits_nonzero(mini, capsys):
  os.remove(mini / 'www' / 'o/ViFi-CLIP/c1/lists/x.txt')
  with serve(str(mini / 'www')) as url:
    assert run('fetch', f'--splits_dir={mini / "splits"}', f'--base_url={url}', '--pins=vifi') == 1
  out = capsys.readouterr().out
  assert 'fetch failed: 1 of 2 pinned files failed' in out and 'lists/x.txt: HTTP Error 404' in out
  assert f'{url}/o/ViFi-CLIP/c1/lists/x.txt' in out


def test_failures_are_reported_not_raised(tmp_path, capsys):
  assert run('generate', '--dataset=ucf101', f'--official={tmp_path}', f'--splits_dir={tmp_path}') == 1
  assert capsys.readouterr().out.startswith(f'generate failed: --official={tmp_path}: no classInd.txt')
  args = ('check', '--dataset=ssv2', f'--videos_dir={tmp_path}', '--split_set=generated')
  assert run(*args, f'--splits_dir={tmp_path}') == 1
  assert 'check failed: no generated split set for ssv2' in capsys.readouterr().out


def test_usage_errors():
  with pytest.raises(app.UsageError, match='needs --videos_dir'):
    run('check', '--dataset=hmdb51')
  with pytest.raises(app.UsageError, match='give one command out of list, fetch, verify, generate, check'):
    run('download')
  with pytest.raises(app.UsageError, match='needs --dataset and --official'):
    run('generate')
