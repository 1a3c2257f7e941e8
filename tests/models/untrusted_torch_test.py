"""Hostile torch files: each is refused with the project's error naming the file, within bounded memory."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from msta_jax.models import torch_pickle
from msta_jax.models.errors import CheckpointError
from tests import untrusted_files as uf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GiB = 1 << 30

_REGRESSIONS = {
    'stride_trick': (uf.write_stride_trick, 'claims 536870912 elements from a storage of 4'),
    'memo_index': (uf.write_memo_index, r'memo index 2147483646 \(LONG_BINPUT\)'),
    'zip_bomb': (uf.write_zip_bomb, 'decompression bomb'),
}


@pytest.fixture(scope='module')
def hostile(tmp_path_factory) -> dict[str, str]:
  root = tmp_path_factory.mktemp('hostile')
  return {case: write(str(root / f'{case}.pth')) for case, (write, _) in _REGRESSIONS.items()}


@pytest.mark.parametrize('case', sorted(_REGRESSIONS))
def test_hostile_file_is_refused_naming_it(hostile, case):
  _, message = _REGRESSIONS[case]
  path = hostile[case]
  with pytest.raises(torch_pickle.UnsafePickleError, match=message) as e:
    torch_pickle.load_state_dict(path)
  assert str(e.value).startswith(path) and isinstance(e.value, CheckpointError)


def test_hostile_files_stay_under_1_5_gib_in_a_3_gib_process(hostile):
  """Acceptance: each regression file loaded in a process capped at 3 GiB of address space; the peak
  resident memory of the whole process (numpy, jax imported) stays under 1.5 GiB. (Before the checks:
  2.17 GiB for the stride trick, 2.19 GiB for the zip bomb, a raw MemoryError for the memo index.)"""
  paths = [hostile[case] for case in sorted(_REGRESSIONS)]
  script = textwrap.dedent(f'''
      import json, resource, sys
      resource.setrlimit(resource.RLIMIT_AS, ({3 * GiB}, {3 * GiB}))
      from msta_jax.models import torch_pickle
      out = []
      for path in sys.argv[1:]:
        try:
          torch_pickle.load_state_dict(path)
          out.append('loaded')
        except torch_pickle.TorchFileError as e:
          out.append(type(e).__name__)
      from tests import untrusted_files
      print(json.dumps({{'errors': out, 'peak': untrusted_files.peak_rss_bytes()}}))
  ''')
  res = subprocess.run([sys.executable, '-c', script, *paths], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'}, timeout=300)
  assert res.returncode == 0, res.stderr[-2000:]
  report = json.loads(res.stdout.strip().splitlines()[-1])
  assert report['errors'] == ['UnsafePickleError'] * 3
  assert report['peak'] < 1.5 * GiB, report


def test_many_records_over_one_storage_are_refused(tmp_path):
  """Tensor records are cheap in the pickle; copies of one 1 MiB storage may not add up to more than
  MAX_TENSOR_BYTES_RATIO times what the archive stores."""
  n = 1 << 18
  recs = [uf.tensor_record(f'w{i}', '0', 'FloatStorage', n, 0, (n,), (1,)) for i in range(64)]
  path = uf.write_torch_zip(str(tmp_path / 'many.pth'), uf.state_dict_pickle(recs),
                            {'0': np.zeros(n, '<f4').tobytes()})
  with pytest.raises(torch_pickle.UnsafePickleError, match='more than 4x the bytes of the storages they read'):
    torch_pickle.load(path)


def test_valid_strided_records_still_read(tmp_path):
  """A transposed view and a slice at an offset read as torch would (the checks only refuse hostile
  records)."""
  store = np.arange(12, dtype='<f4')
  recs = [uf.tensor_record('t', '0', 'FloatStorage', 12, 0, (4, 3), (1, 4)),
          uf.tensor_record('s', '0', 'FloatStorage', 12, 5, (2, 3), (3, 1))]
  path = uf.write_torch_zip(str(tmp_path / 'views.pth'), uf.state_dict_pickle(recs), {'0': store.tobytes()})
  sd = torch_pickle.load_state_dict(path)
  np.testing.assert_array_equal(sd['t'], store.reshape(3, 4).T)
  np.testing.assert_array_equal(sd['s'], store[5:11].reshape(2, 3))


def test_deep_nesting_and_cycles_do_not_exhaust_the_stack(tmp_path):
  depth = 100_000
  pkl = b'\x80\x02' + b'}(X\x01\x00\x00\x00a' * depth + b'}' + b'u' * depth + b'.'
  path = uf.write_torch_zip(str(tmp_path / 'deep.pth'), pkl, {})
  with pytest.raises(torch_pickle.TorchFileError, match='nested deeper than 100 levels'):
    torch_pickle.load_state_dict(path)
  node = {'w': np.ones(2, np.float32)}
  node['self'] = node
  assert list(torch_pickle.flatten_state({'m': node})) == ['m.w']


_RECORD = uf.tensor_record('w', '0', 'FloatStorage', 4, 0, (4,), (1,))


@pytest.mark.parametrize('pkl,expected', [
    (uf.state_dict_pickle([_RECORD.replace(b'ctorch._utils', b'ctorch._utilz')]),
     r'torch\._utilz\._rebuild_tensor_v2, which is neither'),
    (uf.state_dict_pickle([_RECORD.replace(b'storage', b'st\xffrage', 1)]), 'UnicodeDecodeError'),
    (uf.state_dict_pickle([_RECORD.replace(b'J\x04\x00\x00\x00t', b'X\x01\x00\x00\x00at', 1)]),
     'ValueError: invalid literal for int'),  # numel a string
    (uf.state_dict_pickle([_RECORD])[:-9] + b'.', 'not enough data in stream'),  # truncated
    (uf.state_dict_pickle([_RECORD.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x009", 1)]),
     "no member 'archive/data/9'"),
])
def test_broken_pickles_raise_the_project_error_naming_the_file(tmp_path, pkl, expected):
  path = uf.write_torch_zip(str(tmp_path / 'bad.pth'), pkl, {'0': np.arange(4, dtype='<f4').tobytes()})
  with pytest.raises(torch_pickle.TorchFileError, match=expected) as e:
    torch_pickle.load_state_dict(path)
  assert str(e.value).startswith(path)


def test_a_flipped_byte_in_a_stored_member_fails_its_crc(tmp_path):
  path = uf.write_pth(str(tmp_path / 'ok.pth'), {'w': np.arange(4, dtype=np.float32)})
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data.replace(b'little', b'littlf'))
  with pytest.raises(torch_pickle.TorchFileError, match='Bad CRC-32') as e:
    torch_pickle.load_state_dict(path)
  assert str(e.value).startswith(path)
