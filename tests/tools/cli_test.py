"""Tools that parse their own flags run as programs through cli.run: absl's app.run, main's exit status."""
import os
import subprocess
import sys


def test_a_private_flags_tool_runs_as_a_program(tmp_path):
  env = dict(os.environ, USE_TF='0')
  run = lambda *args: subprocess.run([sys.executable, '-m', 'msta_jax.tools.synthetic', *args], env=env,
                                     capture_output=True, text=True, timeout=120)
  bad = run('--no_such_flag=1')
  assert bad.returncode == 2 and 'usage error' in bad.stderr and 'no_such_flag' in bad.stderr
  good = run(f'--write_descriptions={tmp_path / "d.json"}')
  assert good.returncode == 0 and 'wrote descriptions of 96 classes' in good.stdout
