"""launch/run_protocol.py: members, run keys, dry runs, skip / resume, summary and demo rows.

The member runs use a stand-in trainer that writes what trainer.train_and_evaluate writes (results.json,
per-video logits): the real trainer costs about 40 s per run on two cores and has its own tests; this
file tests the runner around it.
"""
import json
import os

import numpy as np
import pytest

from msta_jax.data import synthetic
from msta_jax.tools import protocol_run


def _main(capsys, *argv) -> tuple[int, str, str]:
  rc = protocol_run.main(['run_protocol', *argv])
  out = capsys.readouterr()
  return rc, out.out, out.err


def test_dry_run_prints_one_main_command_per_member(capsys, tmp_path):
  w = str(tmp_path)
  rc, out, _ = _main(capsys, '--protocol=few_shot', '--dataset=hmdb51', f'--workdir={w}', '--dry_run',
                     '--config.optim.lr=5e-4')
  lines = out.splitlines()
  assert rc == 0 and len(lines) == 4
  assert lines[0].startswith('python -m msta_jax.main --config=configs/hmdb_fewshot.py:method=msta,shots=2,seed=0 '
                             f'--workdir={w}/hmdb_fewshot-msta-k2-s')
  assert all(line.endswith(' --config.optim.lr=5e-4') for line in lines)
  assert [line.split(':method=msta,')[1].split(',')[0] for line in lines] == [f'shots={k}' for k in (2, 4, 8, 16)]
  assert not os.listdir(w)  # Nothing ran, nothing was written.

  rc, out, _ = _main(capsys, '--protocol=base_to_novel', '--dataset=ssv2', f'--workdir={w}', '--dry_run',
                     '--methods=msta,frame_average', '--args=backbone=clip', '--backbone=/w/clip')
  lines = out.splitlines()
  assert rc == 0 and len(lines) == 6
  assert ':method=frame_average,seed=3,init=/w/clip,backbone=clip ' in lines[-1]
  rc, out, _ = _main(capsys, '--protocol=zero_shot', '--dataset=k400', f'--workdir={w}', '--dry_run')
  assert out == ('python -m msta_jax.main --config=configs/k400_zeroshot.py:method=msta,seed=0 '
                 f'--workdir={w}/k400_zeroshot-msta-s0\n')
  rc, out, _ = _main(capsys, '--protocol=base_to_novel', '--dataset=synthetic', f'--workdir={w}', '--dry_run')
  assert [line.split(' ')[3] for line in out.splitlines()] == [
      f'--config=configs/synthetic.py:protocol=base_to_novel,method=msta,seed={s}' for s in (1, 2, 3)]
  # --shots only chooses few-shot members: one command line serves every protocol (launch/demo.sh).
  rc, out2, _ = _main(capsys, '--protocol=base_to_novel', '--dataset=synthetic', f'--workdir={w}', '--dry_run',
                      '--shots=16')
  assert (rc, out2) == (0, out)


def test_run_directories_are_keyed_by_everything_that_changes_a_run(tmp_path):
  plan = lambda **kw: {m.name for m in protocol_run.plan('few_shot', 'synthetic', str(tmp_path), **kw)}
  plain = plan()
  assert plain == {'synthetic-few_shot-msta-k16-s0'} and plan() == plain
  seed1 = plan(overrides=['--config.data.seed=1'])
  assert seed1 != plain and seed1 != plan(overrides=['--config.data.seed=2'])
  assert plan(backbone='/b1') != plan(backbone='/b2') != plain
  assert plan(shots=[2, 32], seeds=[0, 1]) == {f'synthetic-few_shot-msta-k{k}-s{s}' for k in (2, 32) for s in (0, 1)}


@pytest.mark.parametrize('argv, message', [
    (['--protocol=zero_shot', '--dataset=hmdb51'], 'zero-shot trains on k400, then evaluates'),
    (['--protocol=few_shot', '--dataset=ssv2', '--config.optim.learning_rate=1'],
     "unknown config key 'optim.learning_rate' (ssv2_fewshot-msta-k2-s0-"),
    (['--protocol=few_shot', '--dataset=ssv2', '--shots=3'], 'config argument shots=3; allowed'),
    (['--protocol=few_shot', '--dataset=ssv2', '--config.optim.lr=fast'], "could not convert string to float: 'fast'"),
    (['--protocol=few_shot', '--dataset=ssv2', 'stray'], "unexpected arguments ['stray']"),
    (['--protocol=few_shot', '--dataset=ssv2', '--args=backbone=clip,seed=3'], 'give seed with --seeds'),
    (['--protocol=few_shot', '--dataset=synthetic', '--args=backbone=/x'], 'give backbone with --backbone'),
])
def test_bad_arguments_are_named(capsys, tmp_path, argv, message):
  rc, _, err = _main(capsys, *argv, f'--workdir={tmp_path}', '--dry_run')
  assert rc == 2 and message in err, err


def test_missing_weights_or_dataset_stop_before_any_run(capsys, tmp_path, monkeypatch):
  from msta_jax.train import trainer
  monkeypatch.setattr(trainer, 'train_and_evaluate', lambda *a: pytest.fail('nothing may run'))
  monkeypatch.setenv('HOME', str(tmp_path))
  common = ['--protocol=few_shot', '--dataset=ssv2', f'--workdir={tmp_path / "w"}', '--shots=2,4']
  rc, _, err = _main(capsys, *common)
  assert rc == 1 and 'Download them' in err and '--backbone=PATH' in err and '--backbone=random' in err
  assert '--config.model.init' not in err  # The runner's own flags, not main's.
  rc, _, err = _main(capsys, *common, '--backbone=random', f'--config.data.data_dir={tmp_path}')
  assert rc == 1 and ('`python -m msta_jax.tools.build --dataset=ssv2 --protocol=few_shot '
                      f'--videos_dir=/path/to/ssv2/videos --data_dir={tmp_path}`') in err


class FakeTrainer:
  """Writes results.json and logits as trainer.train_and_evaluate does, with known numbers: top-1 =
  base 70 + seed, novel 60 + 2 seed; few-shot 50 + K; every video of the b2n lists right except one."""

  def __init__(self):
    self.calls = []

  def __call__(self, config, workdir):
    self.calls.append(os.path.basename(workdir))
    spec = synthetic.Spec(seed=config.data.seed)
    plans = synthetic.plan(spec)
    test = {}
    for split in config.data.test_splits:
      p = plans[split]
      n, c = len(p.classes) * 2, len(p.classes)
      label = np.arange(n) % c
      logits = np.eye(c)[label]
      logits[0] = np.roll(logits[0], 1)  # Video 0 loses to the next class (0 -> 1 is its twin).
      os.makedirs(os.path.join(workdir, 'logits'), exist_ok=True)
      np.savez(os.path.join(workdir, 'logits', f'{split}.npz'), logits=logits, label=label, index=np.arange(n),
               classes=np.array([synthetic.class_name(k) for k in p.classes]))
      if split.startswith('b2n_'):
        top1 = {'b2n_base_test': 70.0 + config.seed, 'b2n_novel_test': 60.0 + 2 * config.seed}[split]
      else:  # few_shot_train_k<K>: 50 + K; other or no training split: 50.
        k = config.data.train_split.rpartition('_k')[2]
        top1 = 50.0 + (float(k) if k.isdigit() else 0.0)
      test[split] = {'top1': top1, 'top5': 99.0, 'num_videos': n, 'views': [1, 1], 'temporal_top1': 90.0,
                     'appearance_top1': 95.0, 'temporal_chance': 50.0}
    results = {'test': test, 'trainable_params': 19392, 'frames': 8, 'views': [1, 1], 'method': config.method,
               'selection': {'checkpoint': 2}, 'split_set': {}}
    if len(config.eval.base_novel) == 2:
      base, novel = (test[s]['top1'] for s in config.eval.base_novel)
      results['base_novel'] = {'base': base, 'novel': novel, 'hm': 2 * base * novel / (base + novel)}
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump(results, f)
    return results


def test_synthetic_runs_skip_resume_summarise_and_merge_demo_rows(capsys, tmp_path, monkeypatch):
  from msta_jax.train import trainer
  fake = FakeTrainer()
  monkeypatch.setattr(trainer, 'train_and_evaluate', fake)
  w = str(tmp_path)
  b2n = ['--protocol=base_to_novel', '--dataset=synthetic', f'--workdir={w}', '--seeds=1,2',
         '--config.data.generator_args=val_per_class=2,test_per_class=4']
  rc, out, _ = _main(capsys, *b2n)
  assert rc == 0 and len(fake.calls) == 2
  assert f'wrote {w}/summary.md' in out and f'wrote {w}/demo_results.json' in out
  member = json.load(open(os.path.join(w, fake.calls[0], 'member.json')))
  assert member['command'].startswith('python -m msta_jax.main --config=configs/synthetic.py:protocol=base_to_novel')
  assert member['test_splits'] == ['b2n_base_test', 'b2n_novel_test']

  # Finished runs are skipped; an unfinished one (checkpoints, no results.json) runs again and resumes.
  os.remove(os.path.join(w, fake.calls[1], 'results.json'))
  os.makedirs(os.path.join(w, fake.calls[1], 'checkpoints'))
  rc, _, _ = _main(capsys, *b2n)
  assert rc == 0 and fake.calls[2:] == [fake.calls[1]]

  rc, _, _ = _main(capsys, '--protocol=few_shot', '--dataset=synthetic', f'--workdir={w}', '--shots=2,4',
                   '--methods=msta,zero_shot', '--config.data.generator_args=val_per_class=2,test_per_class=4')
  assert rc == 0 and len(fake.calls) == 7

  rows = json.load(open(os.path.join(w, 'demo_results.json')))
  assert [(r['protocol'], r['method'], r['shots'], r['seed']) for r in rows] == [
      ('base_to_novel', 'msta', None, 1), ('base_to_novel', 'msta', None, 2), ('few_shot', 'msta', 2, 0),
      ('few_shot', 'msta', 4, 0), ('few_shot', 'zero_shot', 2, 0), ('few_shot', 'zero_shot', 4, 0)]
  b = rows[0]
  assert (b['split'], b['base_top1'], b['novel_top1']) == ('b2n_base_test+b2n_novel_test', 71.0, 62.0)
  assert b['hm'] == pytest.approx(2 * 71 * 62 / 133)
  # Pooled over 96 + 96 test videos (2 per class here): one wrong in each list, and the wrong pick is the
  # twin (pair lost, appearance right).
  assert b['top1'] == pytest.approx(100 * 190 / 192) and b['temporal_top1'] == pytest.approx(100 * 190 / 192)
  assert (b['appearance_top1'], b['temporal_chance']) == (100.0, 50.0)
  f = rows[2]
  assert (f['split'], f['top1'], f['temporal_top1'], f['appearance_top1']) == ('few_shot_test', 52.0, 90.0, 95.0)
  assert set(f) == set(b) and (f['hm'], f['base_top1']) == (None, None)  # One schema, null where it does not apply.

  md = open(os.path.join(w, 'summary.md')).read()
  assert '## few_shot — synthetic' in md and '## base_to_novel — synthetic' in md
  hm_of_means = 2 * 71.5 * 63.0 / 134.5
  assert f'| 71.5 | 63.0 | **{hm_of_means:.1f}** |' in md
  assert os.path.getsize(os.path.join(w, 'summary.png')) > 1000
  assert 'base_to_novel,synthetic,msta,tiny_clip' in open(os.path.join(w, 'summary.csv')).read()


def test_runs_made_elsewhere_from_printed_commands_are_summarised(capsys, tmp_path, monkeypatch):
  """A multi-host protocol: each printed command ran through a launcher; the runner then only sums up."""
  from msta_jax.train import trainer
  fake = FakeTrainer()
  w = str(tmp_path)
  argv = ['--protocol=supervised', '--dataset=synthetic', f'--workdir={w}', '--seeds=0,1']
  for member in protocol_run.plan('supervised', 'synthetic', w, seeds=[0, 1]):
    os.makedirs(member.workdir)
    fake(protocol_run.build_config(member), member.workdir)  # What `python -m msta_jax.main ...` leaves.
  monkeypatch.setattr(trainer, 'train_and_evaluate', lambda *a: pytest.fail('finished runs never run again'))
  rc, _, _ = _main(capsys, *argv)
  assert rc == 0
  assert '| msta | tiny_clip | 50.0 ± 0.0 | 99.0 ± 0.0 | — | 1x1 | 8 | 19,392 |' in open(f'{w}/summary.md').read()
