"""Test setup: 8 fake CPU devices and no TensorFlow in transformers, before anything imports JAX."""
import os

os.environ.setdefault('USE_TF', '0')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
if '--xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
# Tests compile the same tiny programs many times (in-process runs and subprocesses): share XLA's
# persistent compilation cache across them for this session.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  import tempfile
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='msta_jax_xla_cache_')
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'

import pytest  # noqa: E402


@pytest.fixture(scope='session')
def synthetic_small_build(tmp_path_factory):
  """(data_dir, builder) of the synthetic dataset at tests/data/synthetic_test.py's SMALL sizes, built
  once per session: the data tests read it back, the generator's command line prints it."""
  import tensorflow_datasets as tfds
  from msta_jax.data.builders import synthetic as builder_lib
  from tests.data.synthetic_test import SMALL
  tfds.disable_progress_bar()
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  return data_dir, builder_lib.build(data_dir, seed=0, **SMALL)
