"""The GPU suite's import closure on the lent GPU image: with the packages that image lacks made
unimportable (benchmarks/gpu_image/sitecustomize.py), the model, the train step and both benchmark
scripts of benchmarks/gpu_suite.sh import. The whole suite at tiny sizes under the same block is

    PYTHONPATH=benchmarks/gpu_image SUITE_SMOKE=1 PYTHON=.venv/bin/python bash benchmarks/gpu_suite.sh

(about 80 s of CPU time, too long for the suite; BENCHMARKS.md)."""
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCK = os.path.join(ROOT, 'benchmarks', 'gpu_image')

_PROBE = """
import sys
sys.argv = ['train_step']
import train_step
if TORCH:  # The GPU image has torch; the newest-stack test venv has none (tests/torch_or_skip.py).
  import pytorch_step
from msta_jax import models
from msta_jax.models import tokenizer
from msta_jax.train import step, losses, from_config
ids, _ = tokenizer.Tokenizer(8)(['a video of archery.'])
absent = [m for m in ('tensorflow', 'tensorflow_datasets', 'clu', 'av', 'grain', 'array_record', 'ftfy')
          if sys.modules.get(m) is not None]
print('OK', tokenizer.FTFY, ids[0].tolist(), absent)
"""


TORCH = importlib.util.find_spec('torch') is not None


def _run(code: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([BLOCK, ROOT, os.path.join(ROOT, 'benchmarks')]),
             USE_TF='0', JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=ROOT,
                        timeout=300)


def test_the_block_makes_the_absent_packages_unimportable():
  done = _run('import ftfy')
  assert done.returncode != 0 and 'ModuleNotFoundError' in done.stderr


def test_model_train_step_and_benchmarks_import_without_the_absent_packages():
  done = _run(f'TORCH = {TORCH}\n' + _PROBE)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stdout.strip().splitlines()[-1] == 'OK False [49406, 320, 1455, 539, 23935, 269, 49407, 0] []'
