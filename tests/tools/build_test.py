"""Tests for `python -m msta_jax.tools.build` and the video_folder builder: real videos written with PyAV
(good ones in every format, and broken ones), built into TFDS datasets and read back."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from msta_jax.tools import build
from msta_jax.data import builders
from msta_jax.data import splits_generate
from tests.data.decode_test import gray
from tests.data.decode_test import write_broken
from tests.data.decode_test import write_video

NAMES = ['brush hair', 'cartwheel', 'catch']


@pytest.fixture(scope='module')
def videos(tmp_path_factory) -> str:
  """Good videos of every format (incl. variable frame rate, portrait, long) plus the broken set."""
  d = tmp_path_factory.mktemp('videos')
  write_video(str(d / 'a.avi'), frames=20)
  write_video(str(d / 'b.mp4'), frames=30)
  write_video(str(d / 'c.webm'), frames=12)
  write_video(str(d / 'long.mkv'), frames=150, width=32, height=24)
  write_video(str(d / 'portrait.mp4'), frames=10, width=48, height=64)
  write_video(str(d / 'vfr.mkv'), times=[0.05 * i for i in range(11)] + [0.5 + 0.2 * i for i in range(1, 10)])
  write_broken(str(d))
  return str(d)


def _write(path, text: str) -> str:
  with open(path, 'w') as f:
    f.write(text)
  return str(path)


def _examples(builder, split: str) -> dict[str, dict]:
  out = {}
  for ex in builder.as_data_source(split):
    ex['video'] = np.stack(ex['video'])
    out[ex['path'].decode()] = ex
  return out


def test_generic_build_stores_good_videos_and_quarantines_bad_ones(videos, tmp_path, capsys):
  train = _write(tmp_path / 'train.txt', 'a.avi 0\nb.mp4 1\nlong.mkv 2\nzero.avi 0\nrandom.mp4 1\n'
                 'audio.mp4 2\nportrait.mp4 2\n')
  test = _write(tmp_path / 'test.txt', 'c.webm 0\r\nvfr.mkv 1\r\none.mp4 2\r\ncut.mkv 0\r\ncut.mp4 1\r\n'
                'gone.avi 2\r\nzero.avi 0\r\n')
  class_file = _write(tmp_path / 'classes.json', json.dumps(NAMES))
  data_dir = str(tmp_path / 'tfds')
  args = ['build', '--name=mini', f'--videos_dir={videos}', '--split', f'train={train}', '--split',
          f'test={test}', f'--classes={class_file}', f'--data_dir={data_dir}', '--short_side=24',
          '--max_frames=16', '--workers=2', '--noprogress', '--max_missing=1']
  assert build.main(args) == 0
  out = capsys.readouterr().out
  assert '  test             listed       7  stored       2  missing      1  quarantined      4' in out
  assert 'gone.avi\trejected\tmissing\tquarantined\ttest\tno such file' in out

  b = builders.load(data_dir, 'mini')
  assert b.info.full_name == 'video_folder/mini/1.1.0'
  assert (b.info.splits['train'].num_examples, b.info.splits['test'].num_examples) == (4, 2)
  ex = _examples(b, 'train')
  shapes = {k: v['video'].shape for k, v in ex.items()}
  assert shapes == {'a.avi': (16, 24, 32, 3), 'b.mp4': (16, 24, 32, 3), 'long.mkv': (16, 24, 32, 3),
                    'portrait.mp4': (10, 32, 24, 3)}
  assert {k: (int(v['label']), int(v['orig_frames'])) for k, v in ex.items()} == {
      'a.avi': (0, 20), 'b.mp4': (1, 30), 'long.mkv': (2, 150), 'portrait.mp4': (2, 10)}
  assert ex['portrait.mp4']['fps'] == pytest.approx(10.0)
  assert ex['long.mkv']['fps'] == pytest.approx(15 / 14.9, rel=0.05)  # 16 frames over 14.9 s.
  np.testing.assert_allclose(ex['a.avi']['video'][[0, -1], 12:, 8:].mean(axis=(1, 2, 3)),
                             [gray(0), gray(19)], atol=5)  # The first and the last frame are kept.
  test_ex = _examples(b, 'test')
  assert sorted(test_ex) == ['c.webm', 'vfr.mkv']
  assert test_ex['vfr.mkv']['video'].shape[0] == 16 and test_ex['vfr.mkv']['orig_frames'] == 20

  meta = dict(b.info.metadata)
  assert meta['splits']['train']['classes'] == NAMES
  assert meta['splits']['test']['class_list'] == 'classes.json'
  assert meta['splits']['test']['source'] == test and len(meta['splits']['test']['sha256']) == 64
  assert (meta['splits']['test']['listed'], meta['splits']['test']['stored']) == (7, 2)
  assert (meta['splits']['test']['missing'], meta['splits']['test']['quarantined']) == (1, 4)
  assert meta['splits']['train']['stored_per_class'] == [1, 1, 2] and meta['max_missing'] == 1
  assert meta['over_max_missing'] == {}
  # Every example knows its line in the list; lists/<split>.txt maps it back to the path (logits' video_id).
  assert {k: int(v['list_index']) for k, v in ex.items()} == {'a.avi': 0, 'b.mp4': 1, 'long.mkv': 2,
                                                               'portrait.mp4': 6}
  with open(os.path.join(b.data_dir, 'lists', 'train.txt')) as f:
    assert f.read().split() == ['a.avi', 'b.mp4', 'long.mkv', 'zero.avi', 'random.mp4', 'audio.mp4',
                                'portrait.mp4']
  assert (meta['short_side'], meta['max_frames'], meta['min_frames']) == (24, 16, 8)
  assert (meta['keep_partial'], meta['jpeg_quality'], meta['target_fps']) == (False, 90, None)
  assert meta['quarantine'] == {
      'rejected': {'empty': 1, 'missing': 1, 'no_video_stream': 1, 'too_short': 1, 'unreadable': 2},
      'partial': {'ends_early': 1}, 'quarantined_files': 7, 'stored_partial_files': 0}
  report = json.load(open(os.path.join(b.data_dir, 'quarantine.json')))
  files = {f['path']: (f['status'], f['reason'], f['splits'], f['stored']) for f in report['files']}
  assert files['zero.avi'] == ('rejected', 'empty', ['train', 'test'], False)  # Once, with both splits.
  assert files['cut.mkv'] == ('partial', 'ends_early', ['test'], False)
  assert files['audio.mp4'][:2] == ('rejected', 'no_video_stream') and len(files) == 7
  text = open(os.path.join(b.data_dir, 'quarantine.txt')).read()
  assert 'one.mp4\trejected\ttoo_short\tquarantined\ttest\t1 frames, fewer than min_frames=8' in text
  assert '  rejected unreadable       2\n' in text
  # TFDS finds it by name too (from its files), and a second build keeps it.
  assert tfds.builder('video_folder/mini', data_dir=data_dir).info.splits['test'].num_examples == 2
  assert build.main(args) == 0 and 'is built already; pass --overwrite' in capsys.readouterr().out


def test_classes_from_labels_keep_partial_and_an_all_bad_split(videos, tmp_path, capsys):
  good = _write(tmp_path / 'good.txt', 'a.avi 0\ncut.mkv 4\n')
  bad = _write(tmp_path / 'bad.txt', 'zero.avi 1\nrandom.mp4 1\n')
  data_dir = str(tmp_path / 'tfds')
  assert build.main(['build', '--name=ids', f'--videos_dir={videos}', '--split', f'good={good}', '--split',
                     f'bad={bad}', f'--data_dir={data_dir}', '--short_side=0', '--keep_partial',
                     '--workers=1', '--noprogress', '--max_missing=1']) == 0
  assert '  bad              listed       2  stored       0  missing      0  quarantined      2  (split not stored' in (
      capsys.readouterr().out)
  b = builders.load(data_dir, 'ids')
  assert list(b.info.splits) == ['good']
  meta = dict(b.info.metadata)
  assert meta['splits']['good']['classes'] == ['0', '1', '2', '3', '4']  # Ids up to the largest label.
  assert meta['splits']['bad']['omitted'] == 'all 2 videos quarantined: the split is not stored'
  assert meta['quarantine']['stored_partial_files'] == 1
  ex = _examples(b, 'good')
  assert ex['cut.mkv']['video'].shape == (17, 48, 64, 3) and int(ex['cut.mkv']['label']) == 4  # Full size.


def test_named_build_stores_each_list_once_with_its_class_list(videos, tmp_path):
  """A miniature generated HMDB51 split set: few-shot with 1 and 2 shots over two classes."""
  sd = str(tmp_path / 'splits')
  for c in range(2):
    for j in range(5):
      shutil.copy(os.path.join(videos, 'c.webm'), os.path.join(videos, f'h{c}_{j}.webm'))
  rows = lambda js: [(f'h{c}_{j}.webm', c) for c in range(2) for j in js]
  lists = {'classes/full.json': (NAMES[:2], 'class list', ''),
           'official/train1.txt': (rows(range(4)), 'train', 'full'),
           'official/test1.txt': (rows([4]) + [('zero.avi', 1)], 'test', 'full'),
           'few_shot/train_1shot.txt': (rows([0]), '1 shot', 'full'),
           'few_shot/train_2shot.txt': (rows([0, 1]), '2 shots', 'full')}
  protocols = {'few_shot': {
      'options': {'shots': [1, 2]},
      'splits': {'train': {'list': 'few_shot/train_{shots}shot.txt', 'classes': 'full'},
                 'test': {'list': 'official/test1.txt', 'classes': 'full'}},
      'heldout': {'source': 'official/train1.txt', 'classes': 'full', 'mode': 'exclude'}}}
  splits_generate._write('hmdb51', str(tmp_path), sd, lists, {'full': 'classes/full.json'}, protocols, [])
  data_dir = str(tmp_path / 'tfds')
  assert build.main(['build', '--dataset=hmdb51', '--protocol=few_shot', '--split_set=generated',
                     f'--splits_dir={sd}', f'--videos_dir={videos}', f'--data_dir={data_dir}',
                     '--short_side=24', '--workers=1', '--noprogress', '--max_missing=0.5']) == 0
  b = tfds.builder('video_folder/hmdb51_generated_few_shot', data_dir=data_dir)
  assert isinstance(b, builders.VideoFolder)  # A registered config: read with the code.
  counts = {name: s.num_examples for name, s in b.info.splits.items()}
  assert counts == {'train_shots1': 2, 'train_shots2': 4, 'heldout': 4, 'test': 2}
  assert builders.protocol_splits(b.info, shots=2) == {'train': 'train_shots2', 'heldout': 'heldout',
                                                       'test': 'test'}
  assert sorted(_examples(b, 'heldout')) == ['h0_2.webm', 'h0_3.webm', 'h1_2.webm', 'h1_3.webm']
  meta = b.info.metadata
  assert meta['splits']['test']['classes'] == NAMES[:2] and meta['splits']['test']['class_list'] == 'full'
  assert meta['splits']['train_shots1']['source'] == 'generated:few_shot/train_1shot.txt'
  assert meta['splits']['train_shots1']['record']['list'] == 'few_shot/train_1shot.txt'
  run = meta['split_set']['runs'][0]
  assert run['options'] == {'shots': 1} and run['record']['protocol'] == 'few_shot'
  assert run['record']['model_selection'].startswith('heldout: official/train1.txt')
  assert meta['quarantine']['rejected'] == {'empty': 1}
  with pytest.raises(ValueError, match=r"holds few_shot with options \[\{'shots': 1\}, \{'shots': 2\}\]"):
    builders.protocol_splits(b.info, shots=16)


def test_named_config_names():
  assert builders.config_name('hmdb51', 'few_shot') == 'hmdb51_vifi_few_shot'
  assert builders.config_name('k400', 'zero_shot') == 'k400_vifi_supervised'  # Same lists: one build.
  assert builders.config_name('k600', 'zero_shot') == 'k600_vifi_zero_shot_mixed'
  assert builders.config_name('k600', 'zero_shot', 'generated') == 'k600_generated_zero_shot_val_only'
  names = {c.name for c in builders.VideoFolder.BUILDER_CONFIGS}
  assert {'ssv2_vifi_base2novel', 'ucf101_generated_zero_shot', 'k600_vifi_zero_shot_val_only'} <= names
  assert 'ucf101_subset_few_shot' in names and 'ssv2_subset_zero_shot' not in names
  assert len(names) == 34 and 'ssv2_vifi_zero_shot' not in names  # 23 vifi and generated, 11 subset.


def test_usage_errors_name_the_flag(videos, tmp_path, capsys):
  lst = _write(tmp_path / 'l.txt', 'a.avi 0\nb.mp4 3\n')
  base = [f'--videos_dir={videos}', f'--data_dir={tmp_path / "out"}', '--noprogress']
  assert build.main(['build', '--name=x', '--dataset=hmdb51', *base]) == 2
  assert 'give either --name with --split' in capsys.readouterr().err
  assert build.main(['build', '--name=x', '--split', 'train', *base]) == 2
  assert '--split train: expected NAME=LIST_FILE' in capsys.readouterr().err
  assert build.main(['build', '--dataset=ssv2', '--protocol=zero_shot', *base]) == 2
  assert "this split set offers ['ssv2_vifi_base2novel', 'ssv2_vifi_few_shot']" in capsys.readouterr().err
  assert build.main(['build', '--name=x', '--split', f'train={lst}', '--classes=hmdb51', '--data_dir=o']) == 2
  assert '--videos_dir is required' in capsys.readouterr().err
  assert build.main(['build', '--name=x', '--split', f'train={lst}', f'--classes={tmp_path / "c.json"}',
                     *base]) == 1
  assert 'c.json: no such file and not a shipped dataset' in capsys.readouterr().err
  two = _write(tmp_path / 'two.json', '["a", "b"]')
  assert build.main(['build', '--name=x', '--split', f'train={lst}', f'--classes={two}', *base]) == 1
  assert 'l.txt: b.mp4 has label 3, outside the 2 classes (ids 0..1) of' in capsys.readouterr().err
  elsewhere = _write(tmp_path / 'e.txt', 'train/a.avi 0\n')
  assert build.main(['build', '--name=x', '--split', f'train={elsewhere}', *base]) == 1
  err = capsys.readouterr().err
  assert f'none of the 1 videos of split train ({elsewhere}) is under --videos_dir={videos}' in err
  broken = _write(tmp_path / 'broken.txt', 'zero.avi 0\nrandom.mp4 0\n')
  assert build.main(['build', '--name=x', '--split', f'train={broken}', '--workers=1', *base]) == 1
  assert "every listed video under" in capsys.readouterr().err
  assert build.main(['build', '--dataset=hmdb51', '--protocol=few_shot', f'--splits_dir={tmp_path}',
                     *base]) == 1
  assert 'is missing (vifi set): run `python -m msta_jax.tools.splits fetch' in capsys.readouterr().err
