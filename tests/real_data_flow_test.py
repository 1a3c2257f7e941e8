"""The real-data path as a lab meets it (issue 22): a miniature UCF101 in the official layout, encoded here
with PyAV (`UCF-101/<Class>/v_<Class>_gXX_cYY.avi`, `ucfTrainTestlist/` with a 1-based classInd.txt,
labelled trainlists and unlabelled testlists), one truncated video, then

  splits generate --classes (a 4-class subset) -> build -> main (smoke preset) -> predict on the export,

with the counts, the quarantine entry and the video ids checked where a user reads them."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from configs import ucf_fewshot
from msta_jax.data import classes
from msta_jax.data import counts
from msta_jax.data.builders import video_folder
from msta_jax.predict import Predictor
from msta_jax.tools import build
from msta_jax.tools import splits as splits_tool
from msta_jax.train import trainer
from tests.data.decode_test import write_video

FULL = classes.names('ucf101')
CHOSEN = ['ApplyEyeMakeup', 'Archery', 'Basketball', 'Bowling']
OTHER = 'Drumming'  # In the official lists, not in the subset: its videos are never looked for.
TRAIN_GROUPS, TEST_GROUPS = (8, 9, 10), (1, 2)  # Official split 1: groups 8-25 train, 1-7 test.


def _name(cls: str, group: int) -> str:
  return f'v_{cls}_g{group:02d}_c01.avi'


def _official(root: str) -> tuple[str, str]:
  """UCF-101/<Class>/*.avi and ucfTrainTestlist/ as downloaded (3 splits, the same videos in each)."""
  videos, lists = os.path.join(root, 'UCF-101'), os.path.join(root, 'ucfTrainTestlist')
  os.makedirs(lists)
  for i, cls in enumerate(CHOSEN):
    os.makedirs(os.path.join(videos, cls))
    for g in TRAIN_GROUPS + TEST_GROUPS:  # Each class its own grey ramp: 16 frames of 32x24.
      write_video(os.path.join(videos, cls, _name(cls, g)), frames=16, width=32, height=24, fps=8, seed=i)
  listed = CHOSEN + [OTHER]
  with open(os.path.join(lists, 'classInd.txt'), 'w') as f:
    f.write(''.join(f'{i + 1} {c}\r\n' for i, c in enumerate(FULL)))
  for n in (1, 2, 3):
    with open(os.path.join(lists, f'trainlist0{n}.txt'), 'w') as f:
      f.write(''.join(f'{c}/{_name(c, g)} {FULL.index(c) + 1}\r\n' for c in listed for g in TRAIN_GROUPS))
    with open(os.path.join(lists, f'testlist0{n}.txt'), 'w') as f:
      f.write(''.join(f'{c}/{_name(c, g)}\r\n' for c in listed for g in TEST_GROUPS))
  return videos, lists


def _truncate(path: str) -> None:
  """Re-encodes `path` as noise (which compresses badly) and cuts it at 40%: a download that broke off."""
  write_video(path, frames=16, width=32, height=24, fps=8, noise=True)
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) * 4 // 10])


def _splits_cli(*args: str) -> int:
  with flagsaver.flagsaver():
    return splits_tool.main(flags.FLAGS(['splits', *args]))


@pytest.fixture(scope='module')
def flow(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('ucf'))
  videos, lists = _official(root)
  sd, data_dir = os.path.join(root, 'splits'), os.path.join(root, 'tfds')
  assert _splits_cli('generate', '--dataset=ucf101', f'--official={lists}', f'--splits_dir={sd}',
                     f'--classes={",".join(CHOSEN)}', '--shots=2') == 0
  subset = os.path.join(sd, 'subset', 'ucf101')
  with open(os.path.join(subset, 'few_shot', 'train_2shot.txt')) as f:
    train = [l.split()[0] for l in f.read().splitlines()]
  truncated = train[0]
  _truncate(os.path.join(videos, truncated.split('_')[1], truncated))
  args = ['build', '--dataset=ucf101', '--protocol=few_shot', '--split_set=subset', f'--splits_dir={sd}',
          f'--videos_dir={videos}', f'--data_dir={data_dir}', '--workers=1', '--noprogress', '--max_frames=16']
  return dict(root=root, videos=videos, lists=lists, subset=subset, sd=sd, data_dir=data_dir, args=args,
              train=train, truncated=truncated)


@pytest.fixture(scope='module')
def built(flow):
  """The default --max_missing=0.01: one truncated video of 8 training videos stops it (after storing)."""
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    rc = build.main(flow['args'])
  return dict(flow, rc=rc, stderr=err.getvalue())


def _config(data_dir: str, **overrides):
  c = ucf_fewshot.get_config('shots=2,split_set=subset,size=tiny')
  c.data.data_dir = data_dir
  c.export_backbone = True
  for k, v in overrides.items():
    section, key = k.split('.')
    c[section][key] = v
  return c


@pytest.fixture(scope='module')
def run(built, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  results = trainer.train_and_evaluate(_config(built['data_dir'], **{'data.allow_partial': True}), workdir)
  return dict(built, workdir=workdir, results=results)


def test_subset_split_set_is_labelled_and_sampled_like_the_full_set(flow):
  with open(os.path.join(flow['subset'], 'manifest.json')) as f:
    manifest = json.load(f)
  assert manifest['name'] == 'subset' and list(manifest['protocols']['ucf101']['few_shot']['options']) == ['shots']
  with open(os.path.join(flow['subset'], 'classes', 'full.json')) as f:
    assert json.load(f) == CHOSEN  # Full-list order, ids local to the subset; Drumming left out.
  assert len(flow['train']) == 8 and all(t.startswith('v_') for t in flow['train'])
  with open(os.path.join(flow['subset'], 'official', 'test1.txt')) as f:
    test = f.read().splitlines()
  assert test == [f'{_name(c, g)} {i}' for i, c in enumerate(CHOSEN) for g in TEST_GROUPS]


def test_build_over_max_missing_exits_1_naming_the_truncated_video(built):
  assert built['rc'] == 1
  assert f'build incomplete: split train_shots2: 1 of 8 listed videos are missing or unusable' in built['stderr']
  assert built['truncated'] in built['stderr'] and 'allow_partial=True' in built['stderr']
  path = video_folder.dataset_dir(built['data_dir'], 'ucf101_subset_few_shot')
  with open(os.path.join(path, 'quarantine.json')) as f:
    q = json.load(f)
  entry, = q['files']
  assert entry['path'] == built['truncated'] and not entry['stored'] and entry['splits'] == ['train_shots2']
  assert entry['status'] in ('rejected', 'partial')
  assert q['splits']['train_shots2'] == {'listed': 8, 'stored': 7, 'missing': 0, 'quarantined': 1,
                                         'stored_per_class': [1, 2, 2, 2]}  # The list's first: class 0's.
  assert q['splits']['test'] == {'listed': 8, 'stored': 8, 'missing': 0, 'quarantined': 0,
                                 'stored_per_class': [2, 2, 2, 2]}


def test_main_refuses_the_partial_dataset_before_building_a_model(built, tmp_path):
  with pytest.raises(counts.PartialDatasetError, match=r"split 'train_shots2' of .*1 of 8 listed videos "
                     r'not stored \(0 missing, 1 quarantined\).*allow_partial=True'):
    trainer.train_and_evaluate(_config(built['data_dir']), str(tmp_path))
  assert not os.path.exists(tmp_path / 'checkpoints')


def test_results_carry_counts_and_say_partial_subset(run):
  with open(os.path.join(run['workdir'], 'results.json')) as f:
    data = json.load(f)['data']
  short = CHOSEN[0]  # rank_key ordering put the truncated video first in the list: class 0's.
  assert run['truncated'].split('_')[1] == short
  assert data['splits']['train'] == {'listed': 8, 'stored': 7, 'missing': 0, 'quarantined': 1,
                                     'unusable_fraction': 0.125, 'stored_per_class': {'min': 1, 'max': 2},
                                     'classes_short': {short: 1}}
  assert data['splits']['test']['test'] == {
      'listed': 8, 'stored': 8, 'missing': 0, 'quarantined': 0, 'unusable_fraction': 0.0,
      'stored_per_class': {'min': 2, 'max': 2}}
  assert data['splits']['val']['listed'] == 4  # Held out: the third training video of each class.
  assert (data['partial'], data['subset'], data['comparable_with_paper']) == (True, True, False)
  assert data['partial_splits'] == ['train'] and data['partial_limit'] == 0.01
  assert run['results']['test']['test']['num_videos'] == 8


def test_logits_carry_video_ids_in_list_order(run):
  with np.load(os.path.join(run['workdir'], 'logits', 'test.npz')) as z:
    ids, labels, logits = list(z['video_id']), z['label'], z['logits']
  assert ids == [_name(c, g) for c in CHOSEN for g in TEST_GROUPS]
  assert list(labels) == [0, 0, 1, 1, 2, 2, 3, 3] and logits.shape == (8, 4)


def test_predict_loads_the_exported_backbone_with_and_without_adapters(run):
  video = os.path.join(run['videos'], 'Archery', _name('Archery', 1))
  out = {}
  for adapters in (None, os.path.join(run['workdir'], 'adapters.safetensors')):
    p = Predictor(os.path.join(run['workdir'], 'backbone'), adapters=adapters)
    r, = p.predict([video], CHOSEN, top_k=4)
    assert r['ok'] and sorted(t['label'] for t in r['top']) == sorted(CHOSEN)
    out[adapters is None] = [t['prob'] for t in r['top']]
  assert out[True] != out[False]  # The adapters change the scores.


def test_build_with_half_the_videos_missing_exits_1_naming_them(flow, tmp_path, capsys):
  """A generic build from the official files themselves: classInd.txt (1-based), an unlabelled testlist
  whose labels come from the class folders; half its videos are gone."""
  test = tmp_path / 'testlist.txt'
  with open(os.path.join(flow['lists'], 'testlist01.txt')) as f:
    lines = [l for l in f.read().splitlines() if not l.startswith(OTHER)]
  listed = [l.replace('_g01_', '_g05_') for l in lines]  # Groups 1 and 2 listed, group 5 never encoded.
  gone = [l for l in listed if '_g05_' in l]
  test.write_text('\n'.join(listed) + '\n')
  classind = os.path.join(flow['lists'], 'classInd.txt')
  killed = tmp_path / 'tfds' / 'video_folder' / 'half' / f'incomplete.x1_{video_folder.VERSION}'
  killed.mkdir(parents=True)  # What a killed build leaves.
  rc = build.main(['build', '--name=half', f'--videos_dir={flow["videos"]}', '--split', f'test={test}',
                   f'--classes={classind}', f'--data_dir={tmp_path / "tfds"}', '--workers=1', '--noprogress'])
  out, err = capsys.readouterr()
  assert f'an earlier build of half was killed before it finished ({killed}: delete them)' in out
  assert rc == 1
  assert len(gone) == 4 and 'split test: 4 of 8 listed videos are not under' in err
  for l in gone:
    assert l in err
  assert not os.path.exists(tmp_path / 'tfds' / 'video_folder' / 'half' / video_folder.VERSION / 'dataset_info.json')


def test_config_and_data_mistakes_fail_before_a_model_is_built(built, tmp_path, monkeypatch):
  from msta_jax.train import from_config
  built_models = []
  monkeypatch.setattr(from_config, 'build_model', lambda *a, **k: built_models.append(a) or 1 / 0)
  c = _config(built['data_dir'], **{'data.allow_partial': True})
  c.batch_size = 64
  with pytest.raises(ValueError, match=r"split 'train_shots2' .* has 7 clips, fewer than one global batch \(64\)"):
    trainer.train_and_evaluate(c, str(tmp_path))
  c = _config(built['data_dir'], **{'msta.last_block': 12})  # The full model's blocks on the tiny one.
  with pytest.raises(ValueError, match=r'config.msta.first_block..last_block = 1..12; tiny_viclip has blocks 1..2'):
    trainer.train_and_evaluate(c, str(tmp_path))
  assert not built_models


def test_main_cli_refusal_is_one_line_naming_the_flag(built, tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-m', 'msta_jax.main',
                         '--config=configs/ucf_fewshot.py:shots=2,split_set=subset,size=tiny',
                         f'--config.data.data_dir={built["data_dir"]}', f'--workdir={tmp_path}'],
                        capture_output=True, text=True, cwd=root, env=env, timeout=300)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: split 'train_shots2' of ") and '--config.data.allow_partial=True' in last
