"""Tests for msta_jax.data.splits: pins, parsing, split sets and held-out lists.

Everything but the shipped pins runs on files the tests write: a miniature ViFi-CLIP / Open-VCLIP
repository (real HMDB51 class names, made-up videos) served over http on 127.0.0.1 and fetched with
msta_jax.tools.splits_fetch (the fixtures here serve tests/tools/splits_fetch_test.py and
tests/data/splits_check_test.py too).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import threading

import pytest

from msta_jax.data import classes
from msta_jax.data import splits
from msta_jax.data import splits_generate
from msta_jax.tools import splits_fetch

VIFI_COMMIT = 'e2d1948307f582052078eb8a4afbeb50247166f1'
OVC_COMMIT = '047a817e94b88c02c56fde2f1dd0fbf03f3be638'
HMDB = classes.names('hmdb51')
BASE, NOVEL = HMDB[25:], HMDB[:25]  # ViFi-CLIP's HMDB halves: base = the last 26 classes.


# ---------------------------------------------------------------------------------------------------
# The shipped pins, against the numbers in protocols.md (computed there from the git blobs).


def _real(name: str) -> dict:
  with open(os.path.join(splits._ASSETS, f'{name}.json')) as f:
    return json.load(f)


def test_vifi_pins_cover_both_folders_with_published_counts():
  files = _real('vifi')['files']
  assert len(files) == 65  # 49 lists in datasets_splits/ + 16 csvs in labels/.
  assert sum(p.startswith('labels/') for p in files) == 16
  expected = {  # path: (lines, classes), protocols.md.
      'datasets_splits/hmdb_splits/train1_few_shot_16.txt': (816, 51),
      'datasets_splits/ucf_splits/train1_few_shot_2.txt': (202, 101),
      'datasets_splits/ssv2_splits/train1_few_shot_8.txt': (1392, 174),
      'datasets_splits/hmdb_splits/val1.txt': (1530, 51),
      'datasets_splits/ucf_splits/val2.txt': (3734, 101),
      'datasets_splits/ucf_splits/val3.txt': (3696, 101),
      'datasets_splits/ssv2_splits/validation.txt': (24777, 174),
      'datasets_splits/k400_splits/val.txt': (19877, 400),
      'datasets_splits/k400_splits/train_tiny.txt': (60000, 400),
      'datasets_splits/k600_splits/ZS_split1_K600_eval.txt': (14084, 160),
      'datasets_splits/k600_splits/ZS_split2_K600_eval.txt': (13978, 160),
      'datasets_splits/k600_splits/ZS_split3_K600_eval.txt': (14136, 160),
      'datasets_splits/base2novel_splits/k400_splits/base_val.txt': (9944, 200),
      'datasets_splits/base2novel_splits/k400_splits/novel_val.txt': (9933, 200),
      'datasets_splits/base2novel_splits/ssv2_splits/base_train.txt': (125937, 87),
      'datasets_splits/base2novel_splits/ucf_splits/base_train.txt': (5385, 51),
      'datasets_splits/base2novel_splits/ucf_splits/novel_val.txt': (1695, 50),
      'datasets_splits/base2novel_splits/hmdb_splits/fs_base_s3_train.txt': (416, 26),
      'labels/ucf_101_base_labels.csv': (52, 51),
      'labels/kinetics_600_labels.csv': (601, 600),
      'labels/ZS_split2_K600.csv': (161, 160),
  }
  for path, (lines, classes) in expected.items():
    assert (files[path]['lines'], files[path]['classes']) == (lines, classes), path
  absent = {p: f['git_blob'] for p, f in files.items() if f['sha256'] is None}
  assert absent == {
      'datasets_splits/k400_splits/train.txt': 'd3bf1ab89dda1714ec1f1cf866f9ca331f1495ac',
      'datasets_splits/base2novel_splits/k400_splits/base_train.txt':
          '483c9c6283d052c68a0eb7578e6adc448faebc9b'}
  val1 = files['datasets_splits/hmdb_splits/val1.txt']
  assert val1['git_blob'] == 'f5ae7b5179d7288d31097e2dcf6a76e270f7a558'


def test_val_only_pins_match_protocols_md():
  files = _real('val_only_k600')['files']
  assert {p[12:24]: (f['sha256'], f['lines']) for p, f in files.items() if p.endswith('test.csv')} == {
      'k600_split1/': ('e2fb052f6e1bc85f851535839f248248b0bdf1294b3c7e4ac6555fe1b13e6d2a', 7276),
      'k600_split2/': ('c778488a9c21153f33121bc061ed9db5edc13cc16cf5490bed0c65627d20df78', 7226),
      'k600_split3/': ('32c4639dc3856a1a46989fb5f1cb427a9006fc8a4ea00d5529e6861d456ab973', 7261)}
  assert files['zs_label_db/k600_split1/k600-openset-index2cls.json']['sha256'] == (
      '8505d949cffb8f5f6ddd2fb57cd1da970e9ba4001a354916641a92fe033ff593')
  assert [files[f'converted/k600_split{n}_test.txt']['lines'] for n in (1, 2, 3)] == [7276, 7226, 7261]


@pytest.mark.parametrize('name', splits.PINNED)
def test_every_referenced_file_is_pinned(name):
  m = _real(name)
  for dataset, protocols in m['protocols'].items():
    for spec in protocols.values():
      for options in [dict(zip(spec['options'], v)) for v in zip(*spec['options'].values())] or [{}]:
        for s in spec['splits'].values():
          assert s['list'].format(**options) in m['files']
          assert m['class_lists'][dataset][s['classes'].format(**options)] in m['files']
  for path, pin in m['files'].items():
    assert pin['role'] and len(pin['git_blob']) == 40, path
    if 'indexes' in pin:  # A list never has more classes than the class list it indexes.
      assert pin['classes'] is None or pin['classes'] <= m['files'][pin['indexes']]['classes'], path


# ---------------------------------------------------------------------------------------------------
# Hashing and parsing.


def test_hashes_and_rank_key_follow_their_documented_definitions():
  assert splits.git_blob_id(b'hello\n') == 'ce013625030ba8dba906f756967f9e9ca394464a'  # git hash-object.
  assert splits.rank_key('hmdb51', 'heldout', 'a.avi') == hashlib.sha256(
      b'msta_jax/v1/hmdb51/heldout/a.avi').hexdigest()


def test_parse_list_strips_crlf_and_rejects_malformed_lines():
  rows = splits.parse_list('a.avi 0\r\nb.avi 12\r\n\r\nc.avi 3', 'x')
  assert rows == [('a.avi', 0), ('b.avi', 12), ('c.avi', 3)]
  with pytest.raises(splits.SplitFileError, match=r'x:2: expected `<path> <label id>`'):
    splits.parse_list('a.avi 0\nb c 1\n', 'x')
  with pytest.raises(splits.SplitFileError, match=r'x:2: a.avi is listed twice'):
    splits.parse_list('a.avi 0\na.avi 1\n', 'x')
  with pytest.raises(splits.SplitFileError, match='x:1'):
    splits.parse_list('a.avi zero\n', 'x')


def test_parse_class_list_formats():
  csv_text = b'id,name\r\n0,"Pushing something, then pulling it"\r\n1,brush hair\r\n'
  assert splits.parse_class_list(csv_text, 'l.csv') == ['Pushing something, then pulling it', 'brush hair']
  assert splits.parse_class_list(b'{"1": "b", "0": "a"}', 'i.json') == ['a', 'b']
  assert splits.parse_class_list(b'["a", "b"]', 'c.json') == ['a', 'b']
  with pytest.raises(splits.SplitFileError, match='l.csv: ids must run 0..1'):
    splits.parse_class_list(b'id,name\n0,a\n2,b\n', 'l.csv')
  with pytest.raises(splits.SplitFileError, match='header'):
    splits.parse_class_list(b'name\na\n', 'l.csv')


def test_convert_openvclip_csv_drops_class_folders():
  text = 'val/acting_in_play/L9G_000056_000066.mp4,0\nval/arguing/x7I_000038_000048.mp4,1\n'
  assert splits.convert_openvclip_csv(text, 't.csv') == (
      'val/L9G_000056_000066.mp4 0\nval/x7I_000038_000048.mp4 1\n')
  with pytest.raises(splits.SplitFileError, match='t.csv:2: val/a.mp4 appears under two class folders'):
    splits.convert_openvclip_csv('val/x/a.mp4,0\nval/y/a.mp4,1', 't.csv')


# ---------------------------------------------------------------------------------------------------
# A miniature pinned repository, served on 127.0.0.1.


def _lines(rows, crlf=False, final_newline=True) -> bytes:
  text = ('\r\n' if crlf else '\n').join(f'{p} {l}' for p, l in rows)
  return (text + ('\r\n' if crlf else '\n') * final_newline).encode()


def _csv(names, crlf=True) -> bytes:
  nl = '\r\n' if crlf else '\n'
  return (f'id,name{nl}' + ''.join(f'{i},{n}{nl}' for i, n in enumerate(names))).encode()


def _video(c: int, j: int) -> str:
  return f'v{c:02d}_{j:02d}.avi'


def _pin(data: bytes, role='test file', **extra) -> dict:
  text = data.decode()
  rows = [l.split() for l in text.replace('\r', '').split('\n') if l.strip()]
  return {'git_blob': splits.git_blob_id(data), 'sha256': splits.sha256(data), 'bytes': len(data),
          'lines': len(rows), 'classes': len({r[-1] for r in rows}), 'role': role, **extra}


def make_repos(root: str) -> tuple[dict, dict]:
  """Writes mini ViFi-CLIP and Open-VCLIP trees under root/<owner>/<repo>/<commit>/ and returns their
  manifests: the shipped layout (paths, class lists, protocols) with fewer options, pins of these files."""
  k400 = ['abseiling', 'archery', 'arm wrestling', 'bowling']
  zs = ['acting in play', 'arguing', 'bottling']
  b = [HMDB.index(n) for n in BASE]
  hm, b2n = 'datasets_splits/hmdb_splits', 'datasets_splits/base2novel_splits/hmdb_splits'
  hmdb = lambda js, classes=range(51): [(_video(c, j), c) for c in classes for j in js]
  base = lambda js: [(_video(c, j), i) for i, c in enumerate(b) for j in js]
  kinetics = lambda d, n: [(f'{d}/y{c}_{j:02d}_000000_000010.mp4', c) for c in range(4) for j in range(n)]
  files = {  # HMDB: 40 videos per class, 0-29 train (split 1), 30-39 test.
      'labels/hmdb_51_labels.csv': _csv(HMDB),
      'labels/hmdb_51_base_labels.csv': _csv(BASE),
      'labels/hmdb_51_novel_labels.csv': _csv(NOVEL),
      'labels/kinetics_400_labels.csv': _csv(k400, crlf=False),
      'labels/ZS_split1_K600.csv': _csv(zs, crlf=False),
      f'{hm}/val1.txt': _lines(hmdb(range(30, 40))),
      f'{hm}/val2.txt': _lines(hmdb(range(32, 40)), crlf=True),
      f'{hm}/val3.txt': _lines(hmdb(range(34, 40)), final_newline=False),
      f'{hm}/train1_few_shot_2.txt': _lines(hmdb(range(2))),
      f'{hm}/train1_few_shot_4.txt': _lines(hmdb(range(4))),
      f'{b2n}/base_train.txt': _lines(base(range(30))),
      f'{b2n}/base_val.txt': _lines(base(range(30, 40))),
      f'{b2n}/novel_val.txt': _lines(hmdb(range(30, 40), range(25))),
      'datasets_splits/k400_splits/train.txt': _lines(kinetics('train', 15), crlf=True),
      'datasets_splits/k400_splits/val.txt': _lines(kinetics('val', 3), crlf=True),
      'datasets_splits/k600_splits/ZS_split1_K600_eval.txt': _lines(
          [(f'{d}/k{c}_{j}_000000_000010.mp4', c) for c in range(3)
           for j, d in enumerate(['train', 'test', 'val', 'train'])], final_newline=False),
  }
  for s in (1, 2, 3):  # 4 shots per base class, overlapping between seeds like ViFi-CLIP's.
    files[f'{b2n}/fs_base_s{s}_train.txt'] = _lines(base(range(2 * s, 2 * s + 4)))
  ovc = {
      'zs_label_db/k600_split1/k600-openset-index2cls.json': json.dumps(dict(enumerate(zs))).encode(),
      'zs_label_db/k600_split1/test.csv': ''.join(
          f'val/{n.replace(" ", "_")}/o{c}_{j:02d}_000000_000010.mp4,{c}\n'
          for c, n in enumerate(zs) for j in range(5)).encode(),
  }
  converted = ''.join(f'val/o{c}_{j:02d}_000000_000010.mp4 {c}\n' for c in range(3) for j in range(5))
  for tree, content in ((f'muzairkhattak/ViFi-CLIP/{VIFI_COMMIT}', files),
                        (f'wengzejia1/Open-VCLIP/{OVC_COMMIT}', ovc)):
    for rel, data in content.items():
      os.makedirs(os.path.dirname(os.path.join(root, tree, rel)), exist_ok=True)
      with open(os.path.join(root, tree, rel), 'wb') as f:
        f.write(data)
  vifi, val_only = _real('vifi'), _real('val_only_k600')
  vifi['files'] = {rel: _pin(d) for rel, d in files.items()}
  vifi['protocols'] = {d: vifi['protocols'][d] for d in ('hmdb51', 'k400', 'k600')}
  del vifi['protocols']['k400']['base2novel']
  vifi['protocols']['hmdb51']['few_shot']['options'] = {'shots': [2, 4]}
  val_only['files'] = {rel: _pin(d) for rel, d in ovc.items()}
  val_only['files']['converted/k600_split1_test.txt'] = _pin(
      converted.encode(), derived_from='zs_label_db/k600_split1/test.csv')
  for m in (vifi, val_only):
    m['protocols']['k600']['zero_shot']['options'] = {'split': [1]}
    for rel, pin in m['files'].items():
      if rel.startswith('labels/') or rel.endswith('.json'):
        pin['classes'] = pin['lines'] - 1 if rel.endswith('.csv') else 3
  return vifi, val_only


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args) -> None:
    del args


@contextlib.contextmanager
def serve(directory: str):
  """An http.server on 127.0.0.1 in a thread; yields its base URL."""
  handler = functools.partial(_QuietHandler, directory=directory)
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.02}, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture
def pinned(tmp_path, monkeypatch):
  """Mini repositories under tmp/www, their pins as the shipped assets, and an empty splits dir."""
  www, assets = tmp_path / 'www', tmp_path / 'assets'
  assets.mkdir()
  vifi, val_only = make_repos(str(www))
  for m in (vifi, val_only):
    (assets / f'{m["name"]}.json').write_text(json.dumps(m))
  monkeypatch.setattr(splits, '_ASSETS', str(assets))
  return {'www': str(www), 'splits_dir': str(tmp_path / 'splits'), 'vifi': vifi}


@pytest.fixture
def fetched(pinned):
  with serve(pinned['www']) as url:
    statuses = splits_fetch.fetch(pinned['splits_dir'], base_url=url, log=lambda s: None)
  assert len(statuses) == 22 and all(s.ok for s in statuses)
  return pinned


# ---------------------------------------------------------------------------------------------------
# Split sets.


def test_few_shot_splits_and_record(fetched):
  ps = splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir']).splits('few_shot', shots=4)
  assert [s.name for s in ps] == ['train', 'test']
  assert len(ps.train.entries()) == 204 and len(ps['test'].entries()) == 510
  assert ps.train.class_list == HMDB and ps.train.class_list_name == 'full'
  assert ps.heldout is None and ps.model_selection.startswith('last checkpoint (never the test split)')
  assert 'generate --dataset=hmdb51' in ps.model_selection
  record = ps.record()
  assert record['split_set'] == 'vifi' and record['options'] == {'shots': 4}
  assert record['source'] == f'muzairkhattak/ViFi-CLIP@{VIFI_COMMIT}'
  pin = fetched['vifi']['files']['datasets_splits/hmdb_splits/val1.txt']
  assert record['splits']['test']['sha256'] == pin['sha256']
  with pytest.raises(ValueError, match=r'takes shots in \[2, 4\]; got'):
    splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir']).splits('few_shot', shots=3)


def _official_hmdb(directory: str) -> None:
  """HMDB51's testTrainMulti_7030_splits for the mini videos: 0-29 train, 30-39 test, in all 3 splits."""
  for c, name in enumerate(HMDB):
    for n in (1, 2, 3):
      with open(os.path.join(directory, f'{name.replace(" ", "_")}_test_split{n}.txt'), 'w') as f:
        f.write(''.join(f'{_video(c, j)} {1 if j < 30 else 2} \n' for j in range(40)))


def test_few_shot_heldout_comes_from_the_official_training_split(fetched, tmp_path):
  official = tmp_path / 'testTrainMulti_7030_splits'
  official.mkdir()
  _official_hmdb(str(official))
  splits_generate.generate('hmdb51', str(tmp_path), fetched['splits_dir'])
  ss = splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir'])
  ps = ss.splits('few_shot', shots=2)
  held = ps.heldout.entries()
  assert len(held) == 51 * 10
  assert ps.model_selection.startswith('heldout: official/train1.txt, up to 10 per class kept, smallest')
  # The documented procedure, recomputed: per class, the 10 smallest sha256 among videos 4..29 (the
  # 2- and 4-shot lists use 0..3, the test split 30..39).
  want = set()
  for c in range(51):
    cands = [_video(c, j) for j in range(4, 30)]
    key = lambda p: hashlib.sha256(f'msta_jax/v1/hmdb51/heldout/{p}'.encode()).hexdigest()
    want.update(sorted(cands, key=key)[:10])
  assert {p for p, _ in held} == want
  assert ps.heldout.class_list == HMDB and ps.record()['splits']['heldout']['list_from'] == 'generated'
  assert ss.splits('few_shot', shots=4).heldout.entries() == held  # One held-out list per protocol.


def test_base2novel_ids_are_local_to_their_class_lists(fetched):
  ss = splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir'])
  ps = ss.splits('base2novel', seed=2)
  assert ps.train.class_list == BASE and ps['novel_val'].class_list == NOVEL
  assert {l for _, l in ps.train.entries()} == set(range(26)) and len(ps.train.entries()) == 104
  assert {l for _, l in ps['novel_val'].entries()} == set(range(25))
  held = ps.heldout.entries()
  used = {p for s in (1, 2, 3) for p, _ in ss.splits('base2novel', seed=s).train.entries()}
  assert len(held) == 260 and not used & {p for p, _ in held}  # 10 per base class, none trained on.
  # A base-id list read against the novel class list fails, naming both files.
  wrong = splits.Split('x', ps['base_val'].list_file, 'novel', ps['novel_val'].class_file)
  with pytest.raises(splits.SplitFileError, match='label 25, outside the 25 classes of .*novel_labels.csv'):
    wrong.entries()


def test_k400_heldout_is_carved_out_of_train(fetched):
  ps = splits.get_split_set('vifi', 'k400', fetched['splits_dir']).splits('supervised')
  train, held = ps.train.entries(), ps.heldout.entries()
  assert len(held) == 40 and len(train) == 20  # 4 classes x 15: 10 per class held out.
  assert not {p for p, _ in train} & {p for p, _ in held}
  assert sorted(train + held) == sorted(ps.heldout.list_file.rows())
  zs = splits.get_split_set('vifi', 'k400', fetched['splits_dir']).splits('zero_shot')
  assert zs.heldout.entries() == held and [s.name for s in zs] == ['train', 'heldout', 'val']


def test_k600_definitions(fetched):
  ss = splits.get_split_set('vifi', 'k600', fetched['splits_dir'])
  assert ss.definitions('zero_shot') == ('mixed', 'val_only')
  mixed = ss.splits('zero_shot', split=1)
  val_only = ss.splits('zero_shot', split=1, definition='val_only')
  assert mixed.definition == 'mixed' and mixed.record()['k600_definition'] == 'mixed'
  assert len(mixed['test'].entries()) == 12 and len(val_only['test'].entries()) == 15
  assert mixed['test'].class_list == val_only['test'].class_list == ['acting in play', 'arguing', 'bottling']
  assert val_only.record()['source'] == f'wengzejia1/Open-VCLIP@{OVC_COMMIT}'
  assert mixed.model_selection == 'none: evaluation-only protocol'
  with pytest.raises(ValueError, match="offers definitions"):
    ss.splits('zero_shot', split=1, definition='val')
  with pytest.raises(ValueError, match='applies only to k600 zero_shot'):
    hmdb = splits.get_split_set('vifi', 'hmdb51', fetched['splits_dir'])
    hmdb.splits('zero_shot', split=1, definition='mixed')


def test_missing_files_say_how_to_get_them(pinned):
  test = splits.get_split_set('vifi', 'hmdb51', pinned['splits_dir']).splits('zero_shot', split=1)['test']
  with pytest.raises(splits.SplitFileError, match=r'val1.txt is missing \(vifi set\): run `python -m msta_jax'
                                                  r'.tools.splits fetch'):
    test.entries()
  with pytest.raises(splits.SplitFileError, match='generate --dataset=ucf101 --official=DIR'):
    splits.get_split_set('generated', 'ucf101', pinned['splits_dir'])
