"""Tests for msta_jax.data.splits_generate on small files in each dataset's official format."""
from __future__ import annotations

import csv
import hashlib
import json
import os

import pytest

from msta_jax.data import classes
from msta_jax.data import splits
from msta_jax.data import splits_generate as gen
from msta_jax.tools import splits_fetch


def _key(dataset: str, purpose: str, item: str) -> str:
  """The documented rank key, written out independently of the library."""
  return hashlib.sha256(f'msta_jax/v1/{dataset}/{purpose}/{item}'.encode()).hexdigest()


def _write(path, text: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def official_hmdb(d, train=40, test=10) -> None:
  for c, name in enumerate(classes.names('hmdb51')):
    for n in (1, 2, 3):  # Each split puts a different block of videos in test.
      tags = [2 if (j - 10 * (n - 1)) % (train + test) >= train else 1 for j in range(train + test)]
      folder = name.replace(' ', '_')
      lines = [f'{folder}_{c}_{j:02d}.avi {t} \r\n' for j, t in enumerate(tags)] + [f'x_{c}.avi 0\n']
      _write(os.path.join(d, 'testTrainMulti_7030_splits', f'{folder}_test_split{n}.txt'), ''.join(lines))


def official_ucf(d, train=30, test=5) -> None:
  names = classes.names('ucf101')
  _write(os.path.join(d, 'ucfTrainTestlist', 'classInd.txt'),
         ''.join(f'{i + 1} {n}\r\n' for i, n in enumerate(names)))
  video = lambda n, j: f'{n}/v_{"HandStandPushups" if n == "HandstandPushups" else n}_g{j:02d}_c01.avi'
  for s in (1, 2, 3):
    _write(os.path.join(d, 'ucfTrainTestlist', f'trainlist0{s}.txt'),
           ''.join(f'{video(n, j)} {i + 1}\r\n' for i, n in enumerate(names) for j in range(train)))
    _write(os.path.join(d, 'ucfTrainTestlist', f'testlist0{s}.txt'),
           ''.join(f'{video(n, j)}\r\n' for n in names for j in range(train, train + test + s)))


def official_ssv2(d, train=20, val=3) -> None:
  names = classes.names('ssv2')
  _write(os.path.join(d, 'labels', 'labels.json'), json.dumps({n: str(i) for i, n in enumerate(names)}))
  for split, n_per, offset in (('train', train, 0), ('validation', val, 10 ** 6)):
    items = [{'id': str(offset + 1000 * c + j), 'label': 'x', 'placeholders': [],
              'template': n.replace('something', '[something]')}
             for c, n in enumerate(names) for j in range(n_per)]
    _write(os.path.join(d, 'labels', f'{split}.json'), json.dumps(items))


def official_kinetics(d, dataset, files) -> None:
  names = classes.names(dataset)
  os.makedirs(d, exist_ok=True)
  for fname, n_per in files:
    with open(os.path.join(d, fname), 'w', newline='') as f:
      w = csv.writer(f)
      w.writerow(['label', 'youtube_id', 'time_start', 'time_end', 'split'])
      for c, n in enumerate(names):
        for j in range(n_per):
          w.writerow([n, f'y{c:03d}-{j:02d}', j, j + 10, fname[:-4]])


def _manifest(dest: str) -> dict:
  with open(os.path.join(dest, 'manifest.json')) as f:
    return json.load(f)


def test_hmdb51(tmp_path):
  official_hmdb(str(tmp_path / 'official'))
  dest = gen.generate('hmdb51', str(tmp_path / 'official'), str(tmp_path / 'splits'))
  m = _manifest(dest)
  count = {rel: f['lines'] for rel, f in m['files'].items()}
  assert [count[f'few_shot/train_{k}shot.txt'] for k in (2, 4, 8, 16)] == [102, 204, 408, 816]
  assert count['official/train1.txt'] == 2040 and count['official/test2.txt'] == 510
  assert count['base2novel/fs_base_s1.txt'] == 416 and count['base2novel/base_train.txt'] == 26 * 40
  assert count['base2novel/base_val.txt'] + count['base2novel/novel_val.txt'] == 510
  # Base halves: the 26 classes with the smallest documented key, in full-list order.
  names = classes.names('hmdb51')
  base = set(sorted(names, key=lambda n: _key('hmdb51', 'base_novel', n))[:26])
  ss = splits.get_split_set('generated', 'hmdb51', str(tmp_path / 'splits'))
  ps = ss.splits('base2novel', seed=3)
  assert ps.train.class_list == [n for n in names if n in base] and len(ps['novel_val'].class_list) == 25
  assert max(l for _, l in ps['novel_val'].entries()) == 24
  # Few-shot sets are nested, K per class, picked by the documented key.
  fs = {k: ss.splits('few_shot', shots=k).train.entries() for k in (2, 16)}
  assert set(fs[2]) <= set(fs[16])
  brush = [f'brush_hair_0_{j:02d}.avi' for j in range(50) if (j % 50) < 40]
  want = sorted(brush, key=lambda p: _key('hmdb51', 'few_shot', p))[:2]
  assert {p for p, l in fs[2] if l == 0} == set(want)
  held = ss.splits('few_shot', shots=8).heldout.entries()
  assert len(held) == 510 and not {p for p, _ in held} & {p for p, _ in fs[16]}
  record = ps.record()
  assert record['split_set'] == 'generated' and record['source'] == gen.PROCEDURE
  assert [len(ss.splits('zero_shot', split=n)['test'].entries()) for n in (1, 2, 3)] == [510, 510, 510]
  # Deterministic: a second run writes the same bytes.
  first = {rel: f['sha256'] for rel, f in m['files'].items()}
  gen.generate('hmdb51', str(tmp_path / 'official'), str(tmp_path / 'splits'))
  assert {rel: f['sha256'] for rel, f in _manifest(dest)['files'].items()} == first
  assert all(s.ok for s in splits_fetch.verify(splits.load_generated('hmdb51', str(tmp_path / 'splits'))))


def test_ucf101_paths_are_flat_and_labels_follow_class_ind(tmp_path):
  official_ucf(str(tmp_path))
  gen.generate('ucf101', str(tmp_path), str(tmp_path / 's'))
  ss = splits.get_split_set('generated', 'ucf101', str(tmp_path / 's'))
  test = ss.splits('zero_shot', split=3)['test'].entries()
  assert len(test) == 101 * 8
  hs = classes.names('ucf101').index('HandstandPushups')
  assert ('v_HandStandPushups_g31_c01.avi', hs) in test
  assert len(ss.splits('few_shot', shots=16).train.entries()) == 1616
  ps = ss.splits('base2novel', seed=1)
  assert (len(ps.train.class_list), len(ps['novel_val'].class_list)) == (51, 50)
  assert len(ps.train.entries()) == 816


def test_ssv2(tmp_path):
  official_ssv2(str(tmp_path))
  gen.generate('ssv2', str(tmp_path), str(tmp_path / 's'))
  ss = splits.get_split_set('generated', 'ssv2', str(tmp_path / 's'))
  ps = ss.splits('few_shot', shots=16)
  assert len(ps.train.entries()) == 2784 and len(ps['test'].entries()) == 174 * 3
  assert len(ps.heldout.entries()) == 174 * 4  # 20 per class, 16 trained on: the rest (up to 10).
  b2n = ss.splits('base2novel', seed=2)
  assert (len(b2n.train.class_list), len(b2n['novel_val'].class_list)) == (87, 87)


def test_k400_carves_a_held_out_slice(tmp_path):
  official_kinetics(str(tmp_path), 'k400', [('train.csv', 30), ('validate.csv', 2)])
  gen.generate('k400', str(tmp_path), str(tmp_path / 's'))
  ss = splits.get_split_set('generated', 'k400', str(tmp_path / 's'))
  assert ss.protocols() == ('base2novel', 'zero_shot', 'supervised')
  ps = ss.splits('zero_shot')
  assert (len(ps.train.entries()), len(ps.heldout.entries()), len(ps['val'].entries())) == (8000, 4000, 800)
  assert ps['val'].entries()[0] == ('val/y000-00_000000_000010.mp4', 0)
  b2n = ss.splits('base2novel', seed=1)
  assert len(b2n.train.entries()) == 3200 and len(b2n.train.class_list) == 200


def test_k600_zero_shot_classes(tmp_path):
  official_kinetics(str(tmp_path), 'k600', [('validate.csv', 2)])
  gen.generate('k600', str(tmp_path), str(tmp_path / 's'))
  new = gen.k600_new_classes()
  assert len(new) == 220 and set(gen.K600_RENAMED) <= set(classes.names('k600'))
  ss = splits.get_split_set('generated', 'k600', str(tmp_path / 's'))
  assert ss.definitions('zero_shot') == ('val_only',)
  lists = []
  for n in (1, 2, 3):
    test = ss.splits('zero_shot', split=n)['test']
    want = sorted(sorted(new, key=lambda c: _key('k600', f'zero_shot/split{n}', c))[:160])
    assert test.class_list == want and test.class_list_name == f'k600_zs_split{n}'
    assert len(test.entries()) == 320
    lists.append(set(want))
  assert lists[0] != lists[1] != lists[2]
  with pytest.raises(ValueError, match=r"offers definitions \('val_only',\)"):
    ss.splits('zero_shot', split=1, definition='mixed')


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(ValueError, match=r"x: a.avi is listed under 'brush hair' and 'cartwheel'"):
    gen.to_ids([('a.avi', 'brush_hair'), ('a.avi', 'cartwheel')], classes.names('hmdb51'), 'x')
  with pytest.raises(FileNotFoundError, match='--official=.*is not a directory'):
    gen.generate('hmdb51', str(tmp_path / 'nope'), str(tmp_path / 's'))
  official_hmdb(str(tmp_path / 'h'), train=12, test=4)
  with pytest.raises(ValueError, match=r"class 'brush hair' \(id 0\) has 12 videos, fewer than 16"):
    gen.generate('hmdb51', str(tmp_path / 'h'), str(tmp_path / 's'))
  assert not os.path.exists(tmp_path / 's' / 'generated' / 'hmdb51')  # Nothing half-made.
  os.remove(tmp_path / 'h' / 'testTrainMulti_7030_splits' / 'wave_test_split1.txt')
  with pytest.raises(ValueError, match=r"no videos of \['wave'\]"):
    gen.generate('hmdb51', str(tmp_path / 'h'), str(tmp_path / 's'))
  official_kinetics(str(tmp_path / 'k'), 'k600', [('validate.csv', 1)])
  with open(tmp_path / 'k' / 'validate.csv', 'a') as f:
    f.write('flying a kite,abc,0,10,val\n')
  with pytest.raises(ValueError, match=r"classes not in the class list: \['flying a kite'\]"):
    gen.generate('k600', str(tmp_path / 'k'), str(tmp_path / 's'))
  with pytest.raises(FileNotFoundError, match='no validate.csv or val.csv'):
    gen.generate('k600', str(tmp_path / 'h'), str(tmp_path / 's'))
