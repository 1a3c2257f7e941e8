"""Tests for msta_jax.tools.splits_fetch: download, copy, verify, and refusing files that differ from
their pins (the miniature repositories and fixtures of tests/data/splits_test.py)."""
from __future__ import annotations

import os

import pytest

from msta_jax.data import splits
from msta_jax.tools import splits_fetch
from tests.data.splits_test import OVC_COMMIT, VIFI_COMMIT, fetched, pinned, serve  # noqa: F401 (fixtures)


def test_fetch_installs_verified_files_and_converts_val_only(fetched):
  sd = fetched['splits_dir']
  with open(os.path.join(sd, 'val_only_k600', 'converted', 'k600_split1_test.txt')) as f:
    converted = f.read().split('\n')
  assert converted[:2] == ['val/o0_00_000000_000010.mp4 0', 'val/o0_01_000000_000010.mp4 0']
  assert len(converted) == 16  # 15 videos and the final newline.
  assert all(s.ok for m in splits.PINNED for s in splits_fetch.verify(splits.load_pinned(m, sd)))
  # A second fetch needs no server: every file is present and verified.
  again = splits_fetch.fetch(sd, base_url='http://127.0.0.1:9', log=lambda s: None)
  assert {s.detail for s in again} == {'ok (already present)'}


def test_fetch_rejects_a_tampered_download_and_names_both_hashes(pinned):
  rel = 'datasets_splits/hmdb_splits/val2.txt'
  path = os.path.join(pinned['www'], 'muzairkhattak/ViFi-CLIP', VIFI_COMMIT, rel)
  with open(path, 'ab') as f:
    f.write(b'extra.avi 0\r\n')
  with open(path, 'rb') as f:
    bad_sha = splits.sha256(f.read())
  with serve(pinned['www']) as url, pytest.raises(splits.SplitFileError) as e:
    splits_fetch.fetch(pinned['splits_dir'], base_url=url, log=lambda s: None)
  msg = str(e.value)
  assert msg.startswith('1 of 22 pinned files failed') and rel in msg
  assert bad_sha in msg and pinned['vifi']['files'][rel]['sha256'] in msg
  assert not os.path.exists(os.path.join(pinned['splits_dir'], 'vifi', rel))  # Never written.
  assert os.path.exists(os.path.join(pinned['splits_dir'], 'vifi', 'datasets_splits/hmdb_splits/val1.txt'))


def test_fetch_names_the_url_of_a_missing_file(pinned):
  rel = 'zs_label_db/k600_split1/test.csv'
  os.remove(os.path.join(pinned['www'], 'wengzejia1/Open-VCLIP', OVC_COMMIT, rel))
  with serve(pinned['www']) as url, pytest.raises(splits.SplitFileError) as e:
    splits_fetch.fetch(pinned['splits_dir'], pinned=('val_only_k600',), base_url=url, log=lambda s: None)
  assert f'{url}/wengzejia1/Open-VCLIP/{OVC_COMMIT}/{rel}' in str(e.value) and '404' in str(e.value)
  assert '2 of 3 pinned files failed' in str(e.value)  # test.csv and its conversion.


def test_fetch_from_a_local_copy(pinned):
  clone = os.path.join(pinned['www'], 'muzairkhattak/ViFi-CLIP', VIFI_COMMIT)
  statuses = splits_fetch.fetch(pinned['splits_dir'], pinned=('vifi',), local_copy=clone, log=lambda s: None)
  assert len(statuses) == 19 and all(s.ok for s in statuses)
  with pytest.raises(ValueError, match='one pinned set'):
    splits_fetch.fetch(pinned['splits_dir'], local_copy=clone)


def test_verify_and_entries_reject_a_tampered_local_file(fetched):
  sd = fetched['splits_dir']
  path = os.path.join(sd, 'vifi', 'datasets_splits/hmdb_splits/val1.txt')
  with open(path, 'ab') as f:
    f.write(b'x.avi 1\n')
  with open(path, 'rb') as f:
    bad_sha = splits.sha256(f.read())
  pinned_sha = fetched['vifi']['files']['datasets_splits/hmdb_splits/val1.txt']['sha256']
  failed = [s for s in splits_fetch.verify(splits.load_pinned('vifi', sd)) if not s.ok]
  assert [s.path for s in failed] == [path]
  assert bad_sha in failed[0].detail and pinned_sha in failed[0].detail
  test = splits.get_split_set('vifi', 'hmdb51', sd).splits('zero_shot', split=1)['test']
  with pytest.raises(splits.SplitFileError, match=f'{path} does not match its pin: sha256 {bad_sha}'):
    test.entries()
  with serve(fetched['www']) as url:  # fetch replaces it.
    statuses = splits_fetch.fetch(sd, base_url=url, log=lambda s: None)
  assert [s.detail.split(' (')[0] for s in statuses if s.path == path] == ['ok']
  assert len(test.entries()) == 510
