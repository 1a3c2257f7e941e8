"""Reads torch checkpoints (`torch.save` .pth/.bin and TorchScript .pt) without torch and without
running anything in them.

A pickle is a program: loading one with `pickle.load` (or `torch.load(weights_only=False)`) lets
the file call any Python function. This unpickler resolves only a short allow-list of names to our
own harmless stand-ins: torch's tensor/storage rebuild records (rebuilt as numpy arrays over the
archive's raw storage bytes, bounds-checked), plain containers, and, inside a TorchScript archive,
module classes (`__torch__.*`) as inert records whose state we read. TorchScript code in the archive
is never compiled or run. Any other name refuses the whole file before anything is called.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from typing import Any

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'DoubleStorage': np.float64, 'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8, 'BoolStorage': np.bool_,
}
_DTYPES = {
    'float32': np.float32, 'float': np.float32, 'float64': np.float64, 'double': np.float64,
    'float16': np.float16, 'half': np.float16, 'bfloat16': ml_dtypes.bfloat16, 'int64': np.int64,
    'long': np.int64, 'int32': np.int32, 'int': np.int32, 'int16': np.int16, 'int8': np.int8,
    'uint8': np.uint8, 'bool': np.bool_,
}
# Non-weight objects that ViCLIP-style training checkpoints carry beside the weights (configs).
_INERT_CONTAINERS = {('easydict', 'EasyDict'), ('argparse', 'Namespace')}


class UnsafePickleError(pickle.UnpicklingError):
  """The file asks for something other than tensors and containers; nothing in it was run."""


class _DType:
  def __init__(self, dtype):
    self.dtype = np.dtype(dtype)


class Record:
  """Inert stand-in for a TorchScript module object or a config object: holds state, runs nothing."""
  qualname = 'Record'

  def __new__(cls, *args, **kwargs):
    obj = object.__new__(cls)
    obj.args, obj.state = args, {}
    return obj

  def __init__(self, *args, **kwargs):
    pass

  def __setstate__(self, state: Any) -> None:
    self.state = state if isinstance(state, dict) else {'__state__': state}

  def __setitem__(self, key, value):  # dict subclasses (EasyDict) are rebuilt with SETITEMS.
    self.state[key] = value


def _record_class(module: str, name: str) -> type:
  return type(name, (Record,), {'qualname': f'{module}.{name}'})


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
    raise UnsafePickleError(f'malformed tensor record: offset {offset}, size {size}, stride {stride}')
  if 0 in size:
    return np.zeros(size, storage.dtype)
  last = offset + sum((n - 1) * st for n, st in zip(size, stride))
  if last >= storage.size:
    raise UnsafePickleError(f'tensor record reaches element {last} of a storage of {storage.size}')
  view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                         tuple(st * storage.itemsize for st in stride), writeable=False)
  return np.array(view)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, *_):
  return _rebuild_tensor(storage.view(dtype.dtype) if isinstance(dtype, _DType) else storage,
                         offset, size, stride)


_CALLABLES = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor'): _rebuild_tensor,
    ('torch._utils', '_rebuild_tensor_v3'): _rebuild_tensor_v3,
    ('torch._utils', '_rebuild_parameter'): lambda data, *_: data,
    ('torch._utils', '_rebuild_parameter_with_state'): lambda data, *_: data,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('builtins', 'set'): set,
    ('builtins', 'frozenset'): frozenset,
    ('torch.jit._pickle', 'restore_type_tag'): lambda value, _tag: value,
    ('torch.jit._pickle', 'build_intlist'): list,
    ('torch.jit._pickle', 'build_doublelist'): list,
    ('torch.jit._pickle', 'build_boollist'): list,
    ('torch.jit._pickle', 'build_tensorlist'): list,
}


class _Unpickler(pickle.Unpickler):

  def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, source: str, torchscript: bool):
    super().__init__(io.BytesIO(data))
    self._zf, self._prefix, self._source, self._torchscript = zf, prefix, source, torchscript
    self._storages: dict[str, np.ndarray] = {}
    self._little = True
    byteorder = f'{prefix}byteorder'
    if byteorder in zf.namelist():
      self._little = zf.read(byteorder).strip() == b'little'

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _CALLABLES:
      return _CALLABLES[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _DType(_STORAGE_DTYPES[name])
    if module == 'torch' and name in _DTYPES:
      return _DType(_DTYPES[name])
    if (module, name) in _INERT_CONTAINERS or (self._torchscript and module.startswith('__torch__')):
      return _record_class(module, name)
    raise UnsafePickleError(
        f'{self._source}: refused: the pickle asks for {module}.{name}, which is neither a tensor record '
        'nor a plain container. Nothing in the file was run. If you trust the file, re-save its '
        'weights with torch.save(model.state_dict(), ...) or as safetensors.')

  def persistent_load(self, pid: Any) -> np.ndarray:
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage' and len(pid) >= 5):
      raise UnsafePickleError(f'{self._source}: unknown persistent id {pid!r}')
    _, kind, key, _location, numel = pid[:5]
    if not isinstance(kind, _DType):
      raise UnsafePickleError(f'{self._source}: storage {key!r} has no known dtype ({kind!r})')
    if key not in self._storages:
      raw = self._zf.read(f'{self._prefix}data/{key}')
      dtype = kind.dtype.newbyteorder('<' if self._little else '>') if kind.dtype.itemsize > 1 else kind.dtype
      arr = np.frombuffer(raw, dtype=dtype)
      if arr.size < int(numel):
        raise UnsafePickleError(f'{self._source}: storage {key!r} holds {arr.size} of {numel} elements')
      self._storages[key] = arr.astype(kind.dtype)
    return self._storages[key]


def load(path: str) -> tuple[Any, bool]:
  """Returns (unpickled object, is_torchscript) for a zip-format torch file."""
  try:
    zf = zipfile.ZipFile(path)
  except zipfile.BadZipFile as e:
    raise UnsafePickleError(f'{path}: not a zip-format torch file ({e}); legacy (pre-1.6) torch '
                            'files are not read: re-save with a current torch.save') from e
  with zf:
    pkls = [n for n in zf.namelist() if n.endswith('data.pkl') and n.count('/') == 1]
    if len(pkls) != 1:
      raise UnsafePickleError(f'{path}: expected one <name>/data.pkl in the archive, found {pkls}')
    prefix = pkls[0][: -len('data.pkl')]
    torchscript = any(n.startswith(prefix + 'code/') for n in zf.namelist())
    obj = _Unpickler(zf.read(pkls[0]), zf, prefix, path, torchscript).load()
  return obj, torchscript


def flatten_state(obj: Any, prefix: str = '') -> dict[str, np.ndarray]:
  """Tensors of a nested dict / TorchScript record tree, keyed 'a.b.c' like a torch state_dict."""
  out: dict[str, np.ndarray] = {}
  items = obj.state.items() if isinstance(obj, Record) else obj.items() if isinstance(obj, dict) else ()
  for k, v in items:
    key = f'{prefix}{k}'
    if isinstance(v, np.ndarray):
      out[key] = v
    elif isinstance(v, (dict, Record)):
      out.update(flatten_state(v, key + '.'))
  return out


def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """The tensors of a torch checkpoint as a flat state dict: a `{'model' | 'state_dict' | 'module':
  ...}` wrapper is opened and a DDP save's common `module.` prefix dropped."""
  obj, _ = load(path)
  if isinstance(obj, dict):
    for wrapper in ('model', 'state_dict', 'module'):
      if isinstance(obj.get(wrapper), dict):
        obj = obj[wrapper]
        break
  sd = flatten_state(obj)
  if sd and all(k.startswith('module.') for k in sd):
    return {k[len('module.'):]: v for k, v in sd.items()}
  return sd
