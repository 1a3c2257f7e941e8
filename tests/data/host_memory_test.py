"""glibc's malloc thresholds for the loader's processes (msta_jax/data/host_memory.py)."""
import os
import platform
import subprocess
import sys

import pytest

_PROBE = '''
import ctypes, sys
from msta_jax.data import host_memory
print(host_memory.keep_freed_memory())
# A 4 MiB block freed and allocated again comes back at the same address only from the heap (below the
# mmap threshold): glibc's default maps blocks this large afresh at first.
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
a = libc.malloc(4 << 20); libc.free(a); b = libc.malloc(4 << 20)
print(a == b and a != 0)
'''


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='mallopt thresholds are glibc-only')
def test_thresholds_are_set_on_glibc_unless_the_environment_sets_them():
  out = subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True, check=True).stdout.split()
  assert out == ['True', 'True']
  env = dict(os.environ, MALLOC_TRIM_THRESHOLD_='131072')
  out = subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True, check=True, env=env).stdout
  assert out.split()[0] == 'False'
