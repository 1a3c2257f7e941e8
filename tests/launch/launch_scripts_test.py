"""launch/gpu_host.sh, tpu_pod.sh and slurm.sh: --dry_run prints exactly what would run, and what it
prints (or, for the GPU host, runs) reaches `msta_jax.main` with every argument intact, quotes included.
A stand-in python records its argv; stand-in srun / scontrol play a 2-node SLURM job."""
import json
import os
import shlex
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Arguments that break naive quoting: an empty string, spaces, a comma list, shell characters.
ARGS = ['--config=configs/hmdb_fewshot.py:shots=4,backbone=clip', '--workdir=/shared/runs/a b',
        "--config.data.val_split=", '--config.data.generator_args=a=1,b=2', '--config.model.init=$HOME/w;x']


def _sh(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(['bash', os.path.join(REPO, 'launch', script), *args], capture_output=True, text=True,
                        env=dict(os.environ, **(env or {})), timeout=30)


@pytest.fixture
def fake_bin(tmp_path):
  """A python that logs its argv (one JSON line each) and a 2-node srun / scontrol."""
  d = tmp_path / 'bin'
  d.mkdir()
  log = tmp_path / 'argv.jsonl'
  (d / 'python').write_text(f'#!/usr/bin/env python3\nimport json, sys\nopen({str(log)!r}, "a").write('
                            'json.dumps(sys.argv[1:]) + "\\n")\n')
  (d / 'srun').write_text('#!/usr/bin/env bash\nwhile [[ "$1" == --* ]]; do shift; done\n'
                          'for i in 0 1; do SLURM_PROCID=$i "$@"; done\n')
  (d / 'scontrol').write_text('#!/usr/bin/env bash\necho node7; echo node8\n')
  for f in d.iterdir():
    f.chmod(0o755)
  return d, log


def _argv(log) -> list[list[str]]:
  return [json.loads(line) for line in log.read_text().splitlines()]


def test_gpu_host(tmp_path, fake_bin):
  bin_dir, log = fake_bin
  r = _sh('gpu_host.sh', '--gpus=0,1', '--dry_run', '--', *ARGS)
  assert r.returncode == 0, r.stderr
  line = r.stdout.strip()
  assert line.startswith('CUDA_VISIBLE_DEVICES=0,1 USE_TF=0 TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python -m msta_jax.main ')
  assert shlex.split(line)[6:] == ARGS
  workdir = str(tmp_path / 'w')
  r = _sh('gpu_host.sh', '--', '--config=configs/tiny.py', f'--workdir={workdir}', "--config.data.val_split=",
          env={'PYTHON': str(bin_dir / 'python')})
  assert r.returncode == 0, r.stderr
  assert _argv(log) == [['-m', 'msta_jax.main', '--config=configs/tiny.py', f'--workdir={workdir}',
                         '--config.data.val_split=']]
  assert os.path.isfile(os.path.join(workdir, 'launch.log'))
  r = _sh('gpu_host.sh', '--dry_run', '--run_protocol', '--', '--protocol=few_shot', '--dataset=hmdb51',
          '--workdir=runs/fs')
  assert r.stdout.strip().endswith('.venv/bin/python launch/run_protocol.py --protocol=few_shot --dataset=hmdb51 '
                                   '--workdir=runs/fs')
  assert _sh('gpu_host.sh', '--dry_run', '--', '--config=configs/tiny.py').returncode == 2  # No --workdir.


def test_tpu_pod_runs_the_same_command_on_every_worker():
  r = _sh('tpu_pod.sh', '--tpu=pod', '--zone=us-central2-b', '--project=p', '--dry_run', '--', *ARGS)
  assert r.returncode == 0, r.stderr
  argv = shlex.split(r.stdout)
  assert argv[:8] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'pod', '--zone=us-central2-b', '--project=p']
  assert argv[8] == '--worker=all' and argv[9].startswith('--command=') and len(argv) == 10
  remote = shlex.split(argv[9][len('--command='):])
  # Detached (nohup, &), one log per worker under the workdir.
  assert remote[:7] == ['cd', '~/msta_jax', '&&', 'mkdir', '-p', '/shared/runs/a b', '&&']
  assert remote[7:14] == ['nohup', 'env', 'USE_TF=0', 'TF_CPP_MIN_LOG_LEVEL=2', '.venv/bin/python', '-m', 'msta_jax.main']
  assert remote[14:] == ARGS + ['--distributed', '>', '/shared/runs/a b/worker_$(hostname).log', '2>&1', '<',
                                '/dev/null', '&']
  r = _sh('tpu_pod.sh', '--tpu=pod', '--zone=z', '--dry_run', '--', '--workdir=gs://b/run')
  assert '> ~/msta_jax/logs/worker_$(hostname).log' in r.stdout  # A bucket workdir: logs beside the repo.
  r = _sh('tpu_pod.sh', '--tpu=pod', '--zone=z', '--repo=/opt/msta', '--dry_run', '--install')
  install = shlex.split(r.stdout)[-1][len('--command='):]
  assert install.startswith('cd /opt/msta && { command -v uv >/dev/null || python3 -m pip install --user -q uv; }')
  for part in ("uv venv -q --python 3.11 .venv", "uv pip install -q --python .venv/bin/python -e '.[tpu]'",
               "assert sys.version_info >= (3, 11)", '|| { echo "msta_jax: no Python >= 3.11 venv at /opt/msta/.venv'):
    assert part in install
  r = _sh('tpu_pod.sh', '--tpu=pod', '--zone=z', '--dry_run', '--kill')
  assert 'lsof -t /dev/accel* /dev/vfio/*' in r.stdout and 'xargs -r sudo kill -9' in r.stdout
  assert _sh('tpu_pod.sh', '--tpu=pod', '--dry_run', '--', *ARGS).returncode == 2  # No --zone.


def test_slurm_job_gives_each_node_its_process_id(tmp_path, fake_bin):
  bin_dir, log = fake_bin
  workdir = str(tmp_path / 'runs')
  args = ['--config=configs/k400_supervised.py', f'--workdir={workdir}', "--config.data.val_split=",
          '--config.model.init=$HOME/w;x']
  r = _sh('slurm.sh', '--nodes=2', '--gpus_per_node=4', '--partition=gpu', '--port=2222', '--dry_run', '--', *args,
          env={'PYTHON': str(bin_dir / 'python')})
  assert r.returncode == 0, r.stderr
  script = r.stdout
  for line in ('#SBATCH --nodes=2', '#SBATCH --ntasks-per-node=1', '#SBATCH --gpus-per-node=4', '#SBATCH --exclusive',
               '#SBATCH --partition=gpu', f'#SBATCH --output={workdir}/slurm-%j.out'):
    assert line + '\n' in script
  assert script.rstrip().endswith(f'# submit: sbatch {workdir}/slurm_job.sh')
  assert 'srun --kill-on-bad-exit=1 --cpus-per-task=$SLURM_CPUS_ON_NODE bash -c' in script  # Every CPU of the node.
  pinned = _sh('slurm.sh', '--nodes=2', '--cpus_per_task=96', '--dry_run', '--', *args).stdout
  assert '#SBATCH --cpus-per-task=96\n' in pinned and 'srun --kill-on-bad-exit=1 --cpus-per-task=96 bash' in pinned
  job = tmp_path / 'job.sh'
  job.write_text(script)
  env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_NODELIST='node[7-8]', SLURM_NTASKS='2',
             SLURM_CPUS_ON_NODE='64')
  done = subprocess.run(['bash', str(job)], capture_output=True, text=True, env=env, timeout=30)
  assert done.returncode == 0, done.stderr
  tail = ['--coordinator_address=node7:2222', '--num_processes=2']
  assert _argv(log) == [['-m', 'msta_jax.main', *args, *tail, f'--process_id={i}'] for i in (0, 1)]
  assert _sh('slurm.sh', '--dry_run', '--', *args).returncode == 2  # No --nodes.
