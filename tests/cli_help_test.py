"""Every command-line program of the package answers --help with its usage: no traceback, no unknown flag.

The programs are found, not listed: every module under msta_jax/ with a `__main__` block, plus the launch
scripts. All run in ONE subprocess (a fresh interpreter pays the JAX/TensorFlow imports once): each as
`__main__` via runpy with argv [program, '--help'], the absl flags a previous program defined removed first.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUNNER = r'''
import contextlib, io, json, runpy, sys, traceback
from absl import app, flags
app.define_help_flags()
base = set(flags.FLAGS)
out = {}
for target in json.loads(sys.argv[1]):
  for name in set(flags.FLAGS) - base:
    delattr(flags.FLAGS, name)
  flags.FLAGS.unparse_flags()
  buf, code = io.StringIO(), None
  sys.argv = [target, '--help']
  with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
    try:
      if target.endswith('.py'):
        runpy.run_path(target, run_name='__main__')
      else:
        runpy.run_module(target, run_name='__main__', alter_sys=True)
    except SystemExit as e:
      code = e.code
    except BaseException:
      traceback.print_exc()
      code = 'raised'
  out[target] = {'code': code, 'text': buf.getvalue()}
print(json.dumps(out))
'''


def programs() -> list[str]:
  found = []
  for dirpath, _, files in os.walk(os.path.join(ROOT, 'msta_jax')):
    for f in sorted(files):
      if f.endswith('.py'):
        path = os.path.join(dirpath, f)
        with open(path, encoding='utf-8') as fh:
          if "if __name__ == '__main__':" in fh.read():
            found.append(os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.'))
  return sorted(found) + ['launch/run_protocol.py']


@pytest.fixture(scope='module')
def answers() -> dict:
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-c', _RUNNER, json.dumps(programs())], capture_output=True,
                        text=True, cwd=ROOT, env=env, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_package_has_the_programs_the_docs_name():
  assert {'msta_jax.main', 'msta_jax.predict', 'msta_jax.tools.build', 'msta_jax.tools.splits',
          'msta_jax.tools.probe', 'msta_jax.tools.synthetic', 'launch/run_protocol.py'} <= set(programs())


@pytest.mark.parametrize('program', programs())
def test_help_prints_usage(answers, program):
  a = answers[program]
  text = a['text']
  assert 'Traceback' not in text and 'nknown command line flag' not in text and 'usage error:' not in text, text
  # absl's own --help exits 1 after the usage; programs with private flags return 0.
  assert a['code'] in (0, 1, None), (a['code'], text[-2000:])
  assert 'python -m msta_jax' in text or 'launch/run_protocol.py' in text, text[:2000]  # The docstring usage.
  assert '--' in text.split('python -m', 1)[-1]  # Then the flags.
