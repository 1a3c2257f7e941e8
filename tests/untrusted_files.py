"""Small files of every format the readers take, built without torch, and the ways to break them.

Shared by the regression tests of each reader and by tests/untrusted_fuzz_test.py. A torch `.pth` is
written opcode by opcode (the layout `torch.save` uses: archive/data.pkl with persistent storage ids,
archive/data/<key> raw little-endian bytes), so a test can state exactly which field is hostile.
"""
from __future__ import annotations

import json
import random
import struct
import zipfile
import zlib

import numpy as np

_STORAGES = {np.dtype(np.float32): 'FloatStorage', np.dtype(np.int64): 'LongStorage'}


def _str(s: str) -> bytes:
  b = s.encode()
  return b'X' + struct.pack('<I', len(b)) + b  # BINUNICODE


def _int(v: int) -> bytes:
  if -2**31 <= v < 2**31:
    return b'J' + struct.pack('<i', v)  # BININT
  raw = v.to_bytes((v.bit_length() + 8) // 8, 'little', signed=True)
  return b'\x8a' + bytes([len(raw)]) + raw  # LONG1


def _tuple(vals) -> bytes:
  return b'(' + b''.join(_int(v) for v in vals) + b't'


def tensor_record(name: str, key: str, storage: str, numel: int, offset: int, size, stride) -> bytes:
  """`name: _rebuild_tensor_v2(storage(key), offset, size, stride, False, {})` as SETITEMS items."""
  pid = b'(' + _str('storage') + b'ctorch\n' + storage.encode() + b'\n' + _str(key) + _str('cpu') + \
      _int(numel) + b't' + b'Q'  # BINPERSID
  return (_str(name) + b'ctorch._utils\n_rebuild_tensor_v2\n(' + pid + _int(offset) + _tuple(size) +
          _tuple(stride) + b'\x89}t' + b'R')


def state_dict_pickle(records: list[bytes], memo: bytes = b'') -> bytes:
  """Protocol-2 pickle of a dict of tensor records; `memo` is inserted right after the dict."""
  return b'\x80\x02}' + memo + b'(' + b''.join(records) + b'u.'


def write_torch_zip(path: str, pkl: bytes, storages: dict[str, bytes], compress: bool = False) -> str:
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', pkl)
    z.writestr('archive/byteorder', 'little')
    for key, data in storages.items():
      z.writestr(f'archive/data/{key}', data)
    z.writestr('archive/version', '3\n')
  return path


def write_pth(path: str, tensors: dict[str, np.ndarray]) -> str:
  """A valid torch.save-layout state dict of contiguous float32 / int64 tensors."""
  records, storages = [], {}
  for i, (name, arr) in enumerate(tensors.items()):
    arr = np.ascontiguousarray(arr)
    strides = [st // arr.itemsize for st in arr.strides]
    records.append(tensor_record(name, str(i), _STORAGES[arr.dtype], arr.size, 0, arr.shape, strides))
    storages[str(i)] = arr.astype(arr.dtype.newbyteorder('<')).tobytes()
  return write_torch_zip(path, state_dict_pickle(records), storages)


def write_stride_trick(path: str) -> str:
  """size=(2**29,), stride=(0,) over a 4-element storage: 2 GiB of float32 from a few hundred bytes."""
  rec = tensor_record('w', '0', 'FloatStorage', 4, 0, (2**29,), (0,))
  return write_torch_zip(path, state_dict_pickle([rec]), {'0': np.arange(4, dtype='<f4').tobytes()})


def write_memo_index(path: str) -> str:
  """A LONG_BINPUT with memo index 2**31 - 2: the C unpickler would size its memo by it (16 GiB)."""
  rec = tensor_record('w', '0', 'FloatStorage', 4, 0, (4,), (1,))
  pkl = state_dict_pickle([rec], memo=b'r' + struct.pack('<I', 2**31 - 2))
  return write_torch_zip(path, pkl, {'0': np.arange(4, dtype='<f4').tobytes()})


def write_zip_bomb(path: str, inflated: int = 1 << 30) -> str:
  """A deflated storage of `inflated` zero bytes (about 1 MB on disk), claimed by one tensor record.
  Written by hand: zipfile cannot store a deflate stream it did not make itself without inflating it."""
  numel = inflated // 4
  pkl = state_dict_pickle([tensor_record('w', '0', 'FloatStorage', numel, 0, (numel,), (1,))])
  chunk, comp, crc, body = bytes(1 << 24), zlib.compressobj(1, zlib.DEFLATED, -15), 0, []
  for _ in range(inflated // len(chunk)):
    body.append(comp.compress(chunk))
    crc = zlib.crc32(chunk, crc)
  body.append(comp.flush())
  members = [('archive/data.pkl', pkl, 0, len(pkl), zlib.crc32(pkl)),
             ('archive/byteorder', b'little', 0, 6, zlib.crc32(b'little')),
             ('archive/data/0', b''.join(body), 8, inflated, crc)]
  out, central = bytearray(), bytearray()
  for name, data, method, size, crc_m in members:
    nb, offset = name.encode(), len(out)
    out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, method, 0, 0, crc_m, len(data), size, len(nb), 0)
    out += nb + data
    central += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, method, 0, 0, crc_m, len(data),
                           size, len(nb), 0, 0, 0, 0, 0, offset) + nb
  end = struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(members), len(members), len(central), len(out), 0)
  with open(path, 'wb') as f:
    f.write(bytes(out) + bytes(central) + end)
  return path


def mutate(data: bytes, rng: random.Random, n: int | None = None) -> bytes:
  """`n` (1-8 by default) random edits: flipped bytes, overwritten 4-byte ints, cut or duplicated spans."""
  b = bytearray(data)
  for _ in range(n or rng.randint(1, 8)):
    if not b:
      break
    kind, i = rng.randrange(5), rng.randrange(len(b))
    if kind == 0:
      b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
      b[i] = rng.randrange(256)
    elif kind == 2:
      b[i:i + 4] = struct.pack('<I', rng.choice([0, 1, 2**31 - 1, 2**32 - 1, rng.randrange(2**32)]))
    elif kind == 3:
      del b[i:i + rng.randint(1, 64)]
    else:
      b[i:i] = b[i:i + rng.randint(1, 64)]
  return bytes(b)


def hf_config(vision_width: int = 64, text_width: int = 64) -> dict:
  """config.json of a tiny HF CLIPModel (the keys format_hf reads)."""
  return {'model_type': 'clip', 'vision_config': {'hidden_act': 'quick_gelu', 'num_attention_heads': 2,
                                                  'layer_norm_eps': 1e-5, 'hidden_size': vision_width},
          'text_config': {'hidden_act': 'quick_gelu', 'num_attention_heads': 2, 'eos_token_id': 2,
                          'hidden_size': text_width}}


def json_bytes(obj) -> bytes:
  return json.dumps(obj).encode()


def canonical_state_dict(params: dict) -> dict[str, np.ndarray]:
  """OpenAI-layout (canonical) tensors of a frame-wise CLIP's `params`: what
  checkpoints.canonical_to_params reads back to the same parameters."""
  from msta_jax.models import checkpoints  # Lazy: only the checkpoint tests need the model code.
  out = {}
  for path, value in checkpoints._flatten(params).items():  # pylint: disable=protected-access
    key, _ = checkpoints.canonical_key(path)
    x = np.asarray(value, np.float32)
    if path[-2:] == ('conv1', 'kernel'):
      x = x.transpose(3, 2, 0, 1)
    elif path[-1] == 'kernel':
      x = x.T
    out[key] = np.ascontiguousarray(x)
  return out


def peak_rss_bytes() -> int:
  """This process's peak resident memory (Linux VmHWM). Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux
  keeps that across fork + exec, so a worker started from a large pytest process reports the parent's
  peak (5.5 GB late in the full suite) instead of its own."""
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) * 1024
  raise RuntimeError('/proc/self/status has no VmHWM line')
