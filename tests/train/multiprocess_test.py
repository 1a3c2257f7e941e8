"""Two processes x 4 devices with `--config.sharding.preset=fsdp`, through launch/local_multiprocess.sh:
the same logits as one process on 8 devices, parameters and optimizer moments really split, and a
resume after SIGKILL of both processes; every test video is scored once over the two processes."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.train.trainer_test import _main

EPOCHS = '--config.optim.epochs=1'  # 12 steps, checkpoints at 6 and 12.


def _port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launcher(workdir, data_dir):
  args = _main(workdir, data_dir, EPOCHS, '--config.sharding.preset=fsdp')[3:]
  return ['bash', 'launch/local_multiprocess.sh', '--num_processes=2', '--devices_per_process=4',
          f'--port={_port()}', '--', *args]


def _env():
  return dict(os.environ, PYTHON=sys.executable)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """(one-process workdir, two-process fsdp workdir); the one-process run also builds the dataset, so the
  processes of the second do not wait on its generation."""
  data_dir, root = str(tmp_path_factory.mktemp('datasets')), tmp_path_factory.mktemp('runs')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8')
  subprocess.run(_main(root / 'one', data_dir, EPOCHS), check=True, capture_output=True, env=env)
  run = subprocess.run(_launcher(root / 'two', data_dir), capture_output=True, text=True, timeout=900, env=_env())
  assert run.returncode == 0, (root / 'two' / 'process_0.log').read_text()[-3000:] + run.stderr
  return data_dir, root


def _assert_same_logits(a, b):
  files = sorted(os.listdir(a / 'logits'))
  assert files and files == sorted(os.listdir(b / 'logits'))
  for name in files:
    x, y = np.load(a / 'logits' / name), np.load(b / 'logits' / name)
    assert sorted(x.files) == sorted(y.files)
    for k in x.files:
      if np.issubdtype(x[k].dtype, np.floating):
        np.testing.assert_allclose(y[k], x[k], atol=1e-4, rtol=0, err_msg=f'{name}:{k}')
      else:
        np.testing.assert_array_equal(y[k], x[k], err_msg=f'{name}:{k}')


@pytest.mark.slow
def test_fsdp_on_two_processes_gives_the_one_process_logits(runs):
  _, root = runs
  _assert_same_logits(root / 'one', root / 'two')
  log = (root / 'two' / 'process_0.log').read_text()
  split = re.search(r'sharding fsdp: trainable: (\d+) of (\d+) leaves split, optimizer state: (\d+) of (\d+) '
                    r'leaves split, frozen: (\d+) of (\d+) leaves split', log)
  assert split, log[-2000:]
  trainable, opt, frozen = int(split[1]), int(split[3]), int(split[5])
  assert trainable > 0 and opt == 2 * trainable and frozen > 0  # Adam's mu and nu of each split parameter.
  res = json.loads((root / 'two' / 'results.json').read_text())
  assert res['frozen_unchanged'] is True and res['test']['few_shot_test']['num_videos'] == 96 * 4  # Each once.
  assert 'NOTE: 2 processes, 8 devices' in (root / 'two' / 'process_1.log').read_text()


@pytest.mark.slow
def test_fsdp_on_two_processes_resumes_after_sigkill_of_both(runs, tmp_path):
  data_dir, root = runs
  victim = subprocess.Popen(_launcher(tmp_path, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(), start_new_session=True)
  ckpts = tmp_path / 'checkpoints'
  deadline = time.time() + 600
  while not (ckpts.is_dir() and any(p.name.isdigit() for p in ckpts.iterdir())):
    assert time.time() < deadline and victim.poll() is None, 'no checkpoint appeared'
    time.sleep(0.2)
  os.killpg(victim.pid, signal.SIGKILL)  # The launcher and both processes, mid-run.
  victim.wait()
  assert not (tmp_path / 'results.json').exists()
  run = subprocess.run(_launcher(tmp_path, data_dir), capture_output=True, text=True, timeout=900, env=_env())
  assert run.returncode == 0, (tmp_path / 'process_0.log').read_text()[-3000:] + run.stderr
  assert 'resumed from step' in (tmp_path / 'process_0.log').read_text()
  _assert_same_logits(root / 'one', tmp_path)
