"""URL workdirs reach Orbax unchanged (a fake gs:// filesystem under a temporary directory); local
paths become absolute."""
import os

import pytest
from etils import epath
from etils.epath import gpath
from etils.epath import testing as epath_testing
from orbax.checkpoint._src.path import gcs_utils

from msta_jax import paths
from msta_jax.train import checkpointing


def test_resolve_keeps_urls_and_makes_local_paths_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert os.fspath(paths.resolve('gs://bucket/run')) == 'gs://bucket/run'
  assert os.fspath(paths.resolve('runs/a')) == str(tmp_path / 'runs' / 'a')
  assert os.fspath(paths.resolve('~/x')) == os.path.expanduser('~/x')
  assert paths.is_url('gs://b/x') and not paths.is_url('/tmp/x')


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
  """gs://... paths served from tmp_path/gcs, and the URLs every epath call was given."""
  seen = []

  def local(path):
    seen.append(os.fspath(path))
    return os.fspath(path).replace('gs://', str(tmp_path / 'gcs') + '/')

  def redirect(original, path, *args, **kwargs):
    return original(local(path), *args, **kwargs)

  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)  # Else epath routes gs:// to TF's gfile.
  # Orbax asks the bucket's storage API whether it has hierarchical namespaces; the fake bucket has none.
  monkeypatch.setattr(gcs_utils, 'is_hierarchical_namespace_enabled', lambda path: False)
  names = ('exists', 'isdir', 'listdir', 'makedirs', 'mkdir', 'open', 'remove', 'rmtree', 'stat', 'glob')
  with epath_testing.mock_epath(**{n: redirect for n in names}):
    yield tmp_path / 'gcs', seen


def test_checkpointer_hands_orbax_the_bucket_path(fake_gcs):
  root, seen = fake_gcs
  ckpt = checkpointing.Checkpointer('gs://bucket/run', keep=2, async_save=False)
  assert os.fspath(ckpt.last.directory) == 'gs://bucket/run/checkpoints'
  assert os.fspath(ckpt.best.directory) == 'gs://bucket/run/best'
  assert ckpt.latest_step() is None
  assert any(s.startswith('gs://bucket/run/checkpoints') for s in seen)
  assert not any('gs:/b' in s or s.startswith(os.getcwd()) and 'gs:' in s for s in seen)
  ckpt.close()
  assert (root / 'bucket' / 'run' / 'checkpoints').is_dir()
  epath.Path('gs://bucket/run/config.json').write_text('{}')
  assert (root / 'bucket' / 'run' / 'config.json').read_text() == '{}'
