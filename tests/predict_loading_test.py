"""predict's backbone vocabulary (`random[:MODEL]`, as config.model.init=random and run_protocol
--backbone=random) and its one-line user errors."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from msta_jax import models
from msta_jax.predict import load_backbone


def test_random_backbone_is_seeded_and_named():
  model, params = load_backbone('random:tiny_clip')
  assert model.cfg == models.get_config('tiny_clip')
  shapes = jax.tree.map(lambda x: x.shape, models.param_shapes(model))
  assert jax.tree.map(np.shape, params) == shapes
  with pytest.raises(ValueError, match=r"--backbone=random:nope: no model 'nope'; known: \["):
    load_backbone('random:nope')
  with pytest.raises(ValueError, match='--adapters needs the backbone its run trained on'):
    load_backbone('random', adapters='adapters.safetensors')


def test_cli_user_error_is_one_line(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get('PYTHONPATH', ''))
  proc = subprocess.run([sys.executable, '-m', 'msta_jax.predict', f'--backbone={tmp_path / "none"}',
                         '--video=v.mp4', '--labels=a,b'], capture_output=True, text=True, env=env, timeout=300)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and str(tmp_path / 'none') in last and last.endswith('(--verbose for the traceback)')
