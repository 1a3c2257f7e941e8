"""Fault tolerance (docs/reliability.md): every row of its table has its test here.

One uninterrupted reference run (module fixture) and one chain of restarts of the same command, each
leg ended by a deterministic fault (faults.py: SIGKILL after a step, during a checkpoint write, during
validation, during the test evaluation and during the export; a full disk; a preemption notice; a
corrupted latest checkpoint), must end byte-identical to the reference.
"""
import json
import os
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import tiny
from msta_jax.train import checkpointing
from msta_jax.train import faults
from msta_jax.train import preemption
from msta_jax.train import run_identity
from msta_jax.train import trainer
from msta_jax.train import workdir_lock

SMALL = 'val_per_class=2,test_per_class=4,pretrain_per_class=2'
KILLED = -signal.SIGKILL
# results.json fields that differ between an interrupted run and the reference for a reason: the
# losses seen by the last leg only, and the adapters' path (another workdir).
DIFFER = ('train_loss_this_process_run', 'adapters')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('datasets'))


def _command(workdir, data_dir, *extra):
  """The same command every leg (24 steps, eval every 6, a checkpoint every 4)."""
  return [sys.executable, '-m', 'msta_jax.main', '--config=configs/tiny.py:shots=2', f'--workdir={workdir}',
          f'--config.data.data_dir={data_dir}', f'--config.data.generator_args={SMALL}', '--config.batch_size=16',
          '--config.eval.batch_size=16', '--config.optim.epochs=2', '--config.eval.every_epochs=0.5',
          '--config.checkpoint.every_steps=4', *extra]


def _env(fault=''):
  return dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1', **{faults.ENV: fault})


def _run(workdir, data_dir, fault='', *extra):
  return subprocess.run(_command(workdir, data_dir, *extra), capture_output=True, text=True, env=_env(fault),
                        timeout=600)


def _steps(workdir, folder='checkpoints'):
  d = os.path.join(workdir, folder)
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp('reference')
  out = _run(workdir, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir


def _assert_identical(a, b):
  assert (a / 'adapters.safetensors').read_bytes() == (b / 'adapters.safetensors').read_bytes()
  names = sorted(os.listdir(a / 'logits'))
  assert names == sorted(os.listdir(b / 'logits')) == ['few_shot_test.npz']
  for n in names:
    assert (a / 'logits' / n).read_bytes() == (b / 'logits' / n).read_bytes(), n
  ra, rb = (json.loads((w / 'results.json').read_text()) for w in (a, b))
  for k in DIFFER:
    ra.pop(k), rb.pop(k)
  assert ra == rb
  assert ra['selection']['checkpoint'] in (6, 12, 18, 24) and ra['test']['few_shot_test']['num_videos'] == 384


def test_repeated_faults_end_byte_identical(reference, data_dir, tmp_path):
  w = tmp_path / 'w'
  legs = []

  def leg(fault, *extra, rc=KILLED):
    out = _run(w, data_dir, fault, *extra)
    legs.append((fault, out.returncode))
    assert out.returncode == rc, (fault, out.returncode, out.stderr[-3000:])
    assert not (w / 'results.json').exists()
    return out.stderr

  leg('kill_after_step:3')  # Killed before the first checkpoint: the restart starts from step 0.
  assert _steps(w) == [] and (w / 'run.lock').exists()
  err = leg('kill_during_save:8')
  assert 'taking over a stale lock' in err
  assert _steps(w) == [4, 6] and (w / 'checkpoints' / '8.orbax-checkpoint-tmp').is_dir()
  # A full disk at step 8 (sync save so the failing write is the checkpoint's): stops naming the
  # folder and the OS error; steps 4 and 6 stay restorable.
  err = leg('fsize_after_step:8', '--config.checkpoint.async_save=False', rc=1)
  assert 'unfinished saves of an interrupted run' in err
  assert re.search(r'CheckpointError: writing \S+/checkpoints/8 failed: OSError: \[Errno 27\] File too large\. '
                   # The newest stack's Orbax lists no best step here ('best': []); cause not investigated.
                   r"Committed before it and still restorable: \{'checkpoints': \[4, 6\], 'best': \[6?\]\}", err), err[-2000:]
  # Two legs with a worker process and device prefetch on (they may change on resume): one resumes into
  # them and is SIGKILLed with the worker alive, the next resumes with them again.
  workers = '--config.data.num_workers=1'
  leg('kill_during_eval:12', workers)  # Validation at 12 done, its checkpoints not written.
  assert _steps(w) == [6, 8] and _steps(w, 'best') == [6]
  # Preemption: save at the step boundary, exit 75.
  err = leg('term_after_step:14', workers, rc=preemption.EXIT_CODE)
  seconds = float(re.search(r'preempted: saved step 14 ([0-9.]+) s after the notice; exit code 75', err).group(1))
  assert seconds < 60 and _steps(w) == [12, 14] and not (w / 'run.lock').exists()
  # Corrupt the newest step (truncate its largest array file) and leave a stray temporary folder.
  d = w / 'checkpoints' / '14' / 'state'
  largest = max((p for p in d.rglob('*') if p.is_file()), key=lambda p: p.stat().st_size)
  largest.write_bytes(largest.read_bytes()[:100])
  (w / 'checkpoints' / '16.orbax-checkpoint-tmp-99').mkdir()
  err = leg('kill_during_test')
  assert re.search(r'checkpoints/14 does not restore \(.+\); trying the previous step', err), err[-2000:]
  assert 'resuming from step 12; unusable newer steps moved to' in err
  assert [p.name.split('.')[0] for p in (w / 'corrupt_checkpoints').iterdir()] == ['14']
  assert (w / 'logits' / 'few_shot_test.npz').exists() and _steps(w) == [20, 24]
  leg('kill_during_export')
  assert (w / 'adapters.safetensors').exists()
  out = _run(w, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  _assert_identical(reference, w)
  # A changed training input on resume is refused with the difference.
  out = _run(w, data_dir, '', '--config.optim.lr=0.002')
  assert out.returncode != 0 and 'config.optim.lr: 0.001 -> 0.002' in out.stderr, out.stderr[-2000:]
  assert len(legs) == 7


def test_corrupt_checkpoints_with_none_good_stop_and_list_them(reference, tmp_path):
  import shutil
  shutil.copytree(reference / 'checkpoints', tmp_path / 'checkpoints')
  for step in _steps(tmp_path):
    os.remove(tmp_path / 'checkpoints' / str(step) / 'data' / 'metadata')
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=2, async_save=False)
  with pytest.raises(checkpointing.CheckpointError, match=r'holds steps \[24, 20\] and none restores: step 24: '
                     r'FileNotFoundError: File \S+/24/data/metadata not found\.; step 20: .*/20/data/metadata not found'
                     r'.*Not starting from scratch over them'):
    ckpt.restore_latest(None)  # No target: the arrays come back as stored (a good step restores so).
  assert _steps(tmp_path) == [20, 24]  # Nothing moved when nothing is good.


def test_second_run_on_a_workdir_refuses_and_stale_locks_are_taken_over(data_dir, tmp_path):
  held = workdir_lock.WorkdirLock(str(tmp_path))
  held.acquire()  # This live process holds it.
  c = tiny.get_config('shots=2')
  c.data.data_dir = data_dir
  with pytest.raises(RuntimeError, match=rf'run.lock: another run holds this workdir \(pid {os.getpid()} on this host'):
    trainer.train_and_evaluate(c, str(tmp_path))
  held.release()
  assert not (tmp_path / 'run.lock').exists()
  dead = subprocess.Popen(['true'])
  dead.wait()
  (tmp_path / 'run.lock').write_text(json.dumps({'host': os.uname().nodename, 'pid': dead.pid, 'started': 'x'}))
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  lock.acquire()
  assert json.loads((tmp_path / 'run.lock').read_text())['pid'] == os.getpid()
  lock.release()
  (tmp_path / 'run.lock').write_text(json.dumps({'host': 'elsewhere', 'pid': 1, 'started': 'y'}))
  with pytest.raises(RuntimeError, match='pid 1 on host elsewhere, started y'):
    workdir_lock.WorkdirLock(str(tmp_path)).acquire()


def test_periodic_checkpoints_by_steps_and_minutes():
  by_steps = checkpointing.Periodic(every_steps=4, every_minutes=0, process_count=1)
  assert [s for s in range(1, 13) if by_steps.due(s)] == [4, 8, 12]
  by_time = checkpointing.Periodic(every_steps=0, every_minutes=1e-9, process_count=1)
  assert by_time.due(1)
  by_time.seconds = 3600.0
  by_time.saved()
  assert not by_time.due(2)


def test_resume_check_names_what_changed_and_what_may_change():
  old = {'config': {'optim': {'lr': 1e-3}, 'mesh': [['data', 1]], 'log_every_steps': 6},
         'dataset_identity': {'few_shot_train_k2': {'num_examples': 192}}}
  new = {'config': {'optim': {'lr': 1e-3}, 'mesh': [['data', 8]], 'log_every_steps': 1},
         'dataset_identity': {'few_shot_train_k2': {'num_examples': 192}}}
  assert run_identity.differences(old, new) == []
  new['dataset_identity'] = {'few_shot_train_k2': {'num_examples': 190}}
  new['config']['optim']['lr'] = 2e-3
  assert run_identity.differences(old, new) == [
      'config.optim.lr: 0.001 -> 0.002',
      "dataset: {'few_shot_train_k2': {'num_examples': 192}} -> {'few_shot_train_k2': {'num_examples': 190}}"]
  with pytest.raises(ValueError, match=r'resume_force=True'):
    run_identity.check_resume('/w', 4, old, new, force=False)
  run_identity.check_resume('/w', 4, old, new, force=True)  # Forced: a warning, no error.


def test_unknown_fault_names_the_choices():
  with pytest.raises(ValueError, match=r"unknown fault 'kill_during_lunch'; .*points \['after_step'"):
    faults.parse('kill_during_lunch:3')
  assert faults.parse('kill_during_save:8,term_after_step:3') == (('kill', 'during_save', 8), ('term', 'after_step', 3))


def _config(data_dir, **over):
  c = tiny.get_config('shots=2')
  c.data.data_dir, c.data.generator_args = data_dir, SMALL
  c.batch_size, c.eval.batch_size, c.mesh = 16, 16, (('data', 1), ('model', 1))
  c.optim.epochs, c.optim.warmup_epochs, c.eval.every_epochs = 1.0, 0.25, 0.5  # 12 steps, eval every 6
  c.checkpoint.async_save = False
  for k, v in over.items():
    section, _, field = k.rpartition('.')
    (c[section] if section else c)[field] = v
  return c


def test_skip_nonfinite_keeps_the_state_and_records_the_steps(data_dir, tmp_path, monkeypatch):
  import orbax.checkpoint as ocp
  monkeypatch.setenv(faults.ENV, 'nan_batch:11,nan_batch:12')
  res = trainer.train_and_evaluate(_config(data_dir, **{'optim.skip_nonfinite': 2, 'checkpoint.every_steps': 1,
                                                        'checkpoint.keep': 3}), str(tmp_path / 'a'))
  assert res['nonfinite_skipped'] == [11, 12]
  assert json.loads((tmp_path / 'a' / 'results.json').read_text())['nonfinite_skipped'] == [11, 12]
  assert np.isfinite(res['train_loss_this_process_run']['last'])
  states = {s: ocp.StandardCheckpointer().restore(tmp_path / 'a' / 'checkpoints' / str(s) / 'state') for s in (10, 12)}
  # Steps 11 and 12 changed nothing: parameters, optimizer moments, step counter and RNG of step 10.
  for a, b in zip(*(jax.tree.leaves(states[s]) for s in (10, 12))):
    np.testing.assert_array_equal(a, b)
  assert int(states[12]['step']) == 10
  # One more than allowed: stops at the second with the usual message.
  monkeypatch.setenv(faults.ENV, 'nan_batch:3,nan_batch:5')
  with pytest.raises(FloatingPointError, match=r'loss is nan at step 5: stopping'):
    trainer.train_and_evaluate(_config(data_dir, **{'optim.skip_nonfinite': 1}), str(tmp_path / 'b'))


def test_a_step_over_the_memory_limit_refuses_to_start_naming_the_knobs(data_dir, tmp_path):
  with pytest.raises(MemoryError, match=r'train step needs [0-9.]+ MiB per device .*limit 1.0 MiB '
                     r'\(config.memory_limit_bytes\): it cannot fit, not starting \(global batch 16\).*batch_size.*'
                     r'remat=True.*bfloat16.*sharding'):
    trainer.train_and_evaluate(_config(data_dir, memory_limit_bytes=2**20), str(tmp_path))
  assert not os.path.isdir(tmp_path / 'checkpoints' / '1')


def test_local_multiprocess_names_the_process_that_failed_first(tmp_path):
  fake = tmp_path / 'python'  # Stands in for Python: process 1 fails at once (exit 3), the others later.
  fake.write_text('#!/bin/bash\nfor a in "$@"; do case "$a" in --process_id=*) id="${a#*=}";; esac; done\n'
                  '[ "$id" = 1 ] && exit 3\nsleep 1; exit 1\n')
  fake.chmod(0o755)
  run = subprocess.run(['bash', 'launch/local_multiprocess.sh', '--num_processes=3', '--', '--config=x',
                        f'--workdir={tmp_path}'], capture_output=True, text=True, env=dict(os.environ, PYTHON=str(fake)))
  assert run.returncode == 3
  lines = run.stderr.strip().splitlines()
  assert lines[0] == f'process 1 failed first (exit 3); see {tmp_path}/process_1.log'
  assert sorted(lines[1:]) == [f'process {i} failed (exit 1); see {tmp_path}/process_{i}.log' for i in (0, 2)]


@pytest.mark.slow
def test_a_dead_peer_stops_the_others_naming_it(data_dir, reference, tmp_path):
  import socket
  import time
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  cmd = _command(tmp_path, data_dir, '--config.optim.epochs=0.5', "--config.mesh=(('data', 2), ('model', 1))",
                 '--config.distributed.peer_timeout_s=20', f'--coordinator_address=127.0.0.1:{port}',
                 '--num_processes=2')
  procs = [subprocess.Popen(cmd + [f'--process_id={i}'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env('kill_after_step:2' if i else '')) for i in range(2)]
  assert procs[1].wait(timeout=600) == KILLED
  died = time.monotonic()
  _, err = procs[0].communicate(timeout=120)
  assert procs[0].returncode != 0 and time.monotonic() - died < 60, err[-3000:]
  assert re.search(r'Task 1 heartbeat timeout|tasks are unhealthy \(stopped sending heartbeats\):\s*1', err), err[-3000:]
