"""The restricted unpickler: reads tensors and containers, runs nothing, refuses everything else."""
import argparse
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from msta_jax import models
from msta_jax.models import torch_pickle


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def _zip_with_pickle(path, payload: bytes, extra: dict | None = None):
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', payload)
    z.writestr('archive/byteorder', 'little')
    for name, data in (extra or {}).items():
      z.writestr(name, data)
  return path


def test_exploit_is_refused_and_nothing_runs(tmp_path):
  marker = tmp_path / 'pwned'
  path = _zip_with_pickle(str(tmp_path / 'evil.pth'), pickle.dumps({'model': _Exploit(marker)}))
  with pytest.raises(torch_pickle.UnsafePickleError, match=r'posix\.system|os\.system'):
    torch_pickle.load(path)
  with pytest.raises(torch_pickle.UnsafePickleError, match='Nothing in the file was run'):
    models.load(path)
  assert not marker.exists()


def test_exploit_inside_torchscript_archive_is_refused(tmp_path):
  marker = tmp_path / 'pwned'
  path = _zip_with_pickle(str(tmp_path / 'evil.pt'), pickle.dumps(_Exploit(marker)),
                          {'archive/code/__torch__.py': 'def f(): pass'})
  with pytest.raises(torch_pickle.UnsafePickleError):
    torch_pickle.load(path)
  assert not marker.exists()


def test_out_of_bounds_tensor_record_is_refused(tmp_path):
  from tests.torch_or_skip import torch  # Lazy: the tests that write no torch file run without torch.
  path = str(tmp_path / 'ok.pth')
  torch.save({'w': torch.arange(6, dtype=torch.float32)}, path)
  with zipfile.ZipFile(path) as z:
    names = {n: z.read(n) for n in z.namelist()}
  pkl = [n for n in names if n.endswith('data.pkl')][0]
  # Re-point the tensor at 60 elements of a 6-element storage (size tuple (6,) -> (60,)).
  names[pkl] = names[pkl].replace(b'K\x06\x85', b'K\x3c\x85', 1)
  with zipfile.ZipFile(path, 'w') as z:
    for n, d in names.items():
      z.writestr(n, d)
  with pytest.raises(torch_pickle.UnsafePickleError, match='reaches element'):
    torch_pickle.load(path)


def test_reads_dtypes_strides_and_config_objects(tmp_path):
  from tests.torch_or_skip import torch  # Lazy: the tests that write no torch file run without torch.
  path = str(tmp_path / 'mixed.pth')
  base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
  torch.save({'model': {'t': base.T, 'h': base.half(), 'b': base.bfloat16(), 'i': torch.arange(3)},
              'config': argparse.Namespace(lr=0.1), 'epoch': 7}, path)
  obj, torchscript = torch_pickle.load(path)
  assert not torchscript and obj['epoch'] == 7
  m = obj['model']
  np.testing.assert_array_equal(m['t'], base.T.numpy())
  np.testing.assert_array_equal(m['h'].astype(np.float32), base.numpy())
  np.testing.assert_array_equal(m['b'].astype(np.float32), base.numpy())
  assert m['i'].dtype == np.int64 and m['i'].tolist() == [0, 1, 2]
  assert obj['config'].state == {'lr': 0.1}


def test_legacy_format_gets_a_clear_error(tmp_path):
  from tests.torch_or_skip import torch  # Lazy: the tests that write no torch file run without torch.
  path = str(tmp_path / 'legacy.pth')
  torch.save({'w': torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
  with pytest.raises(ValueError, match='legacy'):
    models.load(path)
