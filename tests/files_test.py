"""The one atomic write: all of the new file or all of the old one, never a temporary left behind."""
import json
import os

import pytest

from msta_jax import files


def test_write_atomic_replaces_and_creates_folders(tmp_path):
  path = str(tmp_path / 'a' / 'b' / 'x.json')
  files.write_atomic(path, 'old')
  files.write_json(path, {'k': 'é'}, ensure_ascii=False)
  assert open(path, encoding='utf-8').read() == '{"k": "é"}\n' and json.load(open(path)) == {'k': 'é'}
  files.write_atomic(path, b'\x00\x01')
  assert open(path, 'rb').read() == b'\x00\x01'
  assert os.listdir(os.path.dirname(path)) == ['x.json']


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
  path = str(tmp_path / 'x.json')
  files.write_atomic(path, 'old')

  def fail(src, dst):
    raise OSError('disk full')
  monkeypatch.setattr(os, 'replace', fail)
  with pytest.raises(OSError, match='disk full'):
    files.write_atomic(path, 'new')
  assert open(path).read() == 'old' and os.listdir(tmp_path) == ['x.json']
