"""msta_jax/tools/demo.py (launch/demo.sh): pre-training, then 12 runs, then the report, in one process.

The runs use the protocol runner's stand-in trainer (tests/launch/run_protocol_test.py): the real demo
takes minutes and is measured in BENCHMARKS.md; this file tests the orchestration around it.
"""
import json
import os
import subprocess

from msta_jax.tools import demo
from tests.launch.run_protocol_test import FakeTrainer

SMALL = '--config.data.generator_args=val_per_class=2,test_per_class=4'


class Trainer(FakeTrainer):
  def __call__(self, config, workdir):
    os.makedirs(workdir, exist_ok=True)  # As the trainer does (the runner makes its members' directories).
    if config.method == 'pretrain':  # Pre-training exports the backbone that the runs load.
      os.makedirs(os.path.join(workdir, 'backbone'))
    return super().__call__(config, workdir)


def test_pretrains_then_runs_every_protocol_then_reports_and_resumes(capsys, tmp_path, monkeypatch):
  from msta_jax.train import trainer
  fake = Trainer()
  monkeypatch.setattr(trainer, 'train_and_evaluate', fake)
  w = str(tmp_path)
  rc = demo.main(['demo', f'--workdir={w}', SMALL])
  out = capsys.readouterr().out
  pre = os.path.basename(demo.pretrain_dir(w, [SMALL]))
  assert fake.calls[0] == pre and len(fake.calls) == 13
  runs = fake.calls[1:]
  for protocol, chunk in zip(demo.PROTOCOLS, (runs[0:4], runs[4:8], runs[8:12])):
    assert [r.split('-')[2] for r in chunk] == list(demo.METHODS), chunk
    assert all(r.startswith(f'synthetic-{protocol}-') for r in chunk)
  member = json.load(open(os.path.join(w, runs[2], 'member.json')))
  assert f'backbone={w}/{pre}/backbone' in member['command'] and SMALL in member['command']
  # The stand-in scores frame_average like everything else (not the structural 50.0): the verdict fails.
  assert rc == 1 and out.count('FAIL (') == 3 and f'wrote {w}/demo_results.json' in out
  assert 'demo wall time: 0 min' in out
  rows = json.load(open(os.path.join(w, 'demo_results.json')))
  assert sorted({(r['protocol'], r['method']) for r in rows}) == sorted(
      (p, m) for p in demo.PROTOCOLS for m in demo.METHODS)

  # A second demo skips pre-training and every finished run, and reports the same table.
  rc = demo.main(['demo', f'--workdir={w}', SMALL, '--started_at=1'])
  again = capsys.readouterr().out
  assert rc == 1 and len(fake.calls) == 13 and '== pre-training' not in again
  table = lambda text: text[text.index('protocol | method'):text.index('demo wall time')]
  assert table(again) == table(out)


def test_pretrain_dir_is_the_one_demo_sh_logs_under(tmp_path):
  """launch/demo.sh names its log with the same key: sha256 of the flags, one per line."""
  for args in ([], ['--config.data.seed=7', '--config.optim.lr=0.01']):
    shell = subprocess.run(['bash', '-c', 'printf "%s\\n" "$@" | sha256sum | cut -c1-10', 'x', *args],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert demo.pretrain_dir(str(tmp_path), args) == os.path.join(str(tmp_path), f'pretrain_{shell}')


def test_bad_override_is_refused_before_anything_runs(capsys, tmp_path):
  rc = demo.main(['demo', f'--workdir={tmp_path}', 'config.optim.lr=1'])
  assert rc == 2 and 'demo:' in capsys.readouterr().err
  assert not os.listdir(tmp_path)
