"""URL paths: gs://bucket/run reaches Orbax, TFDS and the writers unchanged (a fake gs:// filesystem
under a temporary directory stands in for the bucket) and nothing lands in a local 'gs:' folder. A
whole tiny run with a file:// workdir (and its resume): tests/train/trainer_test.py."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from etils import epath
from etils.epath import gpath
from etils.epath import testing as epath_testing
from orbax.checkpoint._src.path import gcs_utils
from orbax.checkpoint._src.serialization import tensorstore_utils as ts_utils

from msta_jax import files
from msta_jax import models
from msta_jax import paths
from msta_jax.data import pipeline
from msta_jax.models import registry
from msta_jax.models import torch_pickle
from msta_jax.train import checkpointing
from msta_jax.train import evaluate
from msta_jax.train import outputs
from msta_jax.train import workdir_lock
from tests import untrusted_files


def test_resolve_keeps_urls_and_makes_local_paths_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert os.fspath(paths.resolve('gs://bucket/run')) == 'gs://bucket/run'
  assert os.fspath(paths.resolve('runs/a')) == str(tmp_path / 'runs' / 'a')
  assert os.fspath(paths.resolve('~/x')) == os.path.expanduser('~/x')
  assert os.fspath(paths.resolve('file:///tmp/run')) == '/tmp/run'  # epath has no file:// backend.
  assert paths.local_or_url('file:///tmp/run') == '/tmp/run' and paths.local_or_url('runs/a') == 'runs/a'
  assert paths.is_url('gs://b/x') and not paths.is_url('/tmp/x')
  with pytest.raises(ValueError, match='file:///dir/run'):
    paths.local_or_url('file://host/run')
  with pytest.raises(ValueError, match='http://x/run: unsupported URL scheme'):
    paths.resolve('http://x/run')


class FakeBucket:
  """gs://NAME/... served from ROOT/NAME/... through epath (and so Orbax's and TFDS's epath calls);
  `seen` holds every gs:// URL a call was given."""

  def __init__(self, root):
    self.root, self.seen = str(root), []

  def local(self, path) -> str:
    path = os.fspath(path)
    if path.startswith('gs://'):
      self.seen.append(path)
      return os.path.join(self.root, path[len('gs://'):])
    return path

  def url(self, local: str) -> str:
    return 'gs://' + os.path.relpath(local, self.root) if local.startswith(self.root + '/') else local

  def one(self, original, path, *args, **kwargs):
    return original(self.local(path), *args, **kwargs)

  def two(self, original, path, dst, *args, **kwargs):
    return original(self.local(path), self.local(dst), *args, **kwargs)

  def glob(self, original, pattern):
    return [self.url(p) for p in original(self.local(pattern))]


@pytest.fixture
def bucket(tmp_path, monkeypatch):
  fake = FakeBucket(tmp_path / 'gcs')
  monkeypatch.setattr(gpath, '_is_tf_installed', lambda: False)  # Else epath routes gs:// to TF's gfile.
  # Orbax asks the bucket's storage API whether it has hierarchical namespaces; the fake bucket has none.
  monkeypatch.setattr(gcs_utils, 'is_hierarchical_namespace_enabled', lambda path: False)
  # Orbax writes arrays through TensorStore's own GCS driver: TensorStore's file driver on the same folder.
  monkeypatch.setattr(ts_utils, '_normalize_path', lambda path: os.path.normpath(fake.local(path)))
  one = ('exists', 'isdir', 'listdir', 'makedirs', 'mkdir', 'open', 'remove', 'rmtree', 'stat', 'walk')
  with epath_testing.mock_epath(glob=fake.glob, rename=fake.two, replace=fake.two, copy=fake.two,
                                **{n: fake.one for n in one}):
    monkeypatch.chdir(tmp_path)
    yield fake
  assert not os.path.exists(tmp_path / 'gs:'), 'a gs:// URL was written as a local path'


def _state():
  return {'w': jnp.arange(8, dtype=jnp.float32), 'step': jnp.int32(3)}


def test_orbax_saves_and_restores_in_the_bucket(bucket):
  ckpt = checkpointing.Checkpointer('gs://bucket/run', keep=2, async_save=False)
  assert os.fspath(ckpt.last.directory) == 'gs://bucket/run/checkpoints'
  assert os.fspath(ckpt.best.directory) == 'gs://bucket/run/best'
  for step in (6, 8):
    ckpt.save(step, _state(), {'offset': step}, {'history': []})
  ckpt.wait()
  run = epath.Path(bucket.root) / 'bucket' / 'run'
  assert sorted(p.name for p in (run / 'checkpoints').iterdir()) == ['6', '8']
  (run / 'checkpoints' / '8' / 'data' / 'metadata').unlink()  # Step 8 no longer restores.
  step, state, data, meta = ckpt.restore_latest(_state())
  assert step == 6 and data == {'offset': 6} and (state['w'] == np.arange(8)).all()
  assert [p.name.split('.')[0] for p in (run / 'corrupt_checkpoints').iterdir()] == ['8']  # Moved in the bucket.
  ckpt.close()
  assert any(s.startswith('gs://bucket/run/checkpoints/6') for s in bucket.seen)
  assert any(s.startswith('gs://bucket/run/corrupt_checkpoints/8.') for s in bucket.seen)


def test_writers_and_backbone_export_land_in_the_bucket(bucket):
  root = epath.Path(bucket.root) / 'bucket' / 'run'
  evaluate.save_logits('gs://bucket/run/logits/test.npz', {'logits': np.eye(2, dtype=np.float32)}, ['a', 'b'])
  with np.load(root / 'logits' / 'test.npz') as z:
    assert list(z['classes']) == ['a', 'b'] and (z['logits'] == np.eye(2)).all()
  files.write_json('gs://bucket/run/results.json', {'test': {}})
  assert json.loads((root / 'results.json').read_text()) == {'test': {}}
  model = models.get_model(models.get_config('tiny_clip'))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(np.float32), registry.param_shapes(model))
  outputs.export_backbone('gs://bucket/run/backbone', model, params, params)
  assert sorted(p.name for p in (root / 'backbone').iterdir()) == ['config.json', 'model.safetensors']
  _, back = models.load('gs://bucket/run/backbone')  # Read back through epath from the bucket.
  assert np.array_equal(back['visual']['proj'], np.asarray(params['visual']['proj']))
  untrusted_files.write_pth(os.fspath(root / 'w.pth'), {'a': np.arange(3, dtype=np.float32)})
  assert np.array_equal(torch_pickle.load_state_dict('gs://bucket/run/w.pth')['a'], np.arange(3))  # A torch zip.


def test_a_bucket_data_dir_reaches_tfds_unchanged(bucket, synthetic_small_build, monkeypatch):
  import tensorflow_datasets as tfds
  data_dir, builder = synthetic_small_build
  os.makedirs(os.path.join(bucket.root, 'data'))
  os.symlink(data_dir, os.path.join(bucket.root, 'data', 'tfds'))
  name = os.path.relpath(os.fspath(builder.data_dir), data_dir)
  given = []
  real = tfds.builder_from_directory

  def spy(path):  # TFDS reads dataset_info.json through epath; ArrayRecord's reader needs the local files.
    given.append(os.fspath(path))
    return real(bucket.local(path))
  monkeypatch.setattr(tfds, 'builder_from_directory', spy)
  parent = os.path.dirname(name)  # synthetic/<spec>: the version folder below is found through epath's glob.
  src = pipeline.open_split('gs://data/tfds', parent, 'few_shot_test')
  assert given == [f'gs://data/tfds/{name}'] and src.path == f'gs://data/tfds/{name}'
  assert len(src) > 0 and src.classes


def test_a_bucket_workdir_gets_no_lock_and_says_so(bucket, caplog):
  lock = workdir_lock.WorkdirLock('gs://bucket/run')
  lock.acquire()  # No create-if-absent on object stores: a warning instead of a racy lock.
  assert 'no workdir lock on object stores' in caplog.text and not lock.held
  assert not (epath.Path(bucket.root) / 'bucket' / 'run' / 'run.lock').exists()
  lock.release()
