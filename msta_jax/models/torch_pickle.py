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
import math
import pickle
import pickletools
import reprlib
import zipfile
from typing import Any

import ml_dtypes
import numpy as np

from msta_jax import paths
from msta_jax.models.errors import CheckpointError, brief

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
# Memory bounds (docs/security.md). torch.save stores its members uncompressed; a compressed member
# may inflate to at most this many times its compressed size once it is larger than _SMALL bytes
# (trained float weights deflate by ~1.1x; deflate's own limit, reached by zeros, is ~1032x).
MAX_INFLATE_RATIO = 10
_SMALL = 1 << 20
# Tensors rebuilt (copied out of their storages) may hold at most this many times the bytes of the
# storages read (plus 1 MiB): tied weights (one storage, two tensors) need 2.
MAX_TENSOR_BYTES_RATIO = 4
# A state dict nests a few levels (TorchScript modules one per submodule); deeper is not a checkpoint.
MAX_DEPTH = 100
_MEMO_OPS = ('PUT', 'BINPUT', 'LONG_BINPUT', 'GET', 'BINGET', 'LONG_BINGET')


class TorchFileError(CheckpointError):
  """A torch file is malformed (a broken archive or pickle); the message names the file."""


class UnsafePickleError(TorchFileError, pickle.UnpicklingError):
  """The file asks for something other than tensors and containers, or for more memory than it holds;
  nothing in it was run."""


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


_CALLABLES = {
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
# Tensor rebuilds are methods of the unpickler: they spend its memory budget.
_REBUILDS = {'_rebuild_tensor_v2': '_rebuild_tensor', '_rebuild_tensor': '_rebuild_tensor',
             '_rebuild_tensor_v3': '_rebuild_tensor_v3'}


def read_member(zf: zipfile.ZipFile, name: str, source: str, limit: int | None = None) -> bytes:
  """The bytes of archive member `name`, inflated only up to its declared size and only when that
  size is plausible for its compressed size (a zip bomb is refused before anything is inflated)."""
  try:
    info = zf.getinfo(name)
  except KeyError as e:
    raise TorchFileError(f'{source}: the archive has no member {name!r}') from e
  if limit is not None and info.file_size > limit:
    raise UnsafePickleError(f'{source}: member {name!r} declares {info.file_size} bytes, more than the '
                            f'{limit} it may hold')
  if (info.compress_type != zipfile.ZIP_STORED and info.file_size > _SMALL
      and info.file_size > MAX_INFLATE_RATIO * max(info.compress_size, 1)):
    raise UnsafePickleError(
        f'{source}: member {name!r} would inflate {info.compress_size} bytes to {info.file_size} '
        f'(more than {MAX_INFLATE_RATIO}x): refused as a decompression bomb')
  with zf.open(info) as f:
    data = f.read(info.file_size)  # zipfile stops at the declared size and checks the CRC.
  if len(data) != info.file_size:
    raise TorchFileError(f'{source}: member {name!r} holds {len(data)} of its {info.file_size} bytes')
  return data


def check_memo(data: bytes, source: str) -> None:
  """Refuses memo indices beyond the pickle's length before the C unpickler sizes its memo by them
  (one flipped LONG_BINPUT byte would otherwise allocate gigabytes)."""
  for op, arg, _pos in pickletools.genops(data):
    if op.name in _MEMO_OPS and not 0 <= arg <= len(data):
      raise UnsafePickleError(f'{source}: pickle memo index {arg} ({op.name}) beyond the pickle\'s '
                              f'{len(data)} bytes')


class _Unpickler(pickle.Unpickler):

  def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, source: str, torchscript: bool):
    super().__init__(io.BytesIO(data))
    self._zf, self._prefix, self._source, self._torchscript = zf, prefix, source, torchscript
    self._storages: dict[str, np.ndarray] = {}
    self._little = True
    names = zf.namelist()
    byteorder = f'{prefix}byteorder'
    if byteorder in names:
      self._little = read_member(zf, byteorder, source, limit=16).strip() == b'little'
    self._budget = _SMALL  # Grows by MAX_TENSOR_BYTES_RATIO x each storage read.

  def find_class(self, module: str, name: str) -> Any:
    if module == 'torch._utils' and name in _REBUILDS:
      return getattr(self, _REBUILDS[name])
    if (module, name) in _CALLABLES:
      return _CALLABLES[(module, name)]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _DType(_STORAGE_DTYPES[name])
    if module == 'torch' and name in _DTYPES:
      return _DType(_DTYPES[name])
    if (module, name) in _INERT_CONTAINERS or (self._torchscript and module.startswith('__torch__')):
      return _record_class(module, name)
    raise UnsafePickleError(
        f'{self._source}: refused: the pickle asks for {reprlib.repr(module)[1:-1]}.'
        f'{reprlib.repr(name)[1:-1]}, which is neither a tensor record nor a plain container. Nothing '
        'in the file was run. If you trust the file, re-save its weights with '
        'torch.save(model.state_dict(), ...) or as safetensors.')

  def _rebuild_tensor(self, storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
    """A copy of the tensor a record describes, after checking that every element it names lies in
    its storage and that it has no more elements than the storage (overlapping strides, e.g. stride 0
    with a huge size, would otherwise turn a few bytes into gigabytes)."""
    if not isinstance(storage, np.ndarray):
      raise TorchFileError(f'{self._source}: tensor record without a storage ({reprlib.repr(storage)})')
    offset = int(offset)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    where = f'{self._source}: tensor record (offset {offset}, size {reprlib.repr(size)}, stride ' \
            f'{reprlib.repr(stride)})'
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
      raise UnsafePickleError(f'{where} is malformed')
    numel = math.prod(size)
    if numel == 0:
      return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= storage.size:
      raise UnsafePickleError(f'{where} reaches element {last} of a storage of {storage.size}')
    if numel > storage.size:
      raise UnsafePickleError(f'{where} claims {numel} elements from a storage of {storage.size} '
                              '(overlapping strides): refused, it would hold more than the file')
    self._budget -= numel * storage.itemsize
    if self._budget < 0:
      raise UnsafePickleError(f'{self._source}: tensor records claim more than {MAX_TENSOR_BYTES_RATIO}x '
                              'the bytes of the storages they read: refused')
    view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                           tuple(st * storage.itemsize for st in stride), writeable=False)
    return np.array(view)

  def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, *_):
    if isinstance(dtype, _DType) and isinstance(storage, np.ndarray):
      storage = storage.view(dtype.dtype)
    return self._rebuild_tensor(storage, offset, size, stride)

  def persistent_load(self, pid: Any) -> np.ndarray:
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage' and len(pid) >= 5):
      raise UnsafePickleError(f'{self._source}: unknown persistent id {reprlib.repr(pid)}')
    _, kind, key, _location, numel = pid[:5]
    if not isinstance(kind, _DType):
      raise UnsafePickleError(f'{self._source}: storage {reprlib.repr(key)} has no known dtype '
                              f'({reprlib.repr(kind)})')
    key, numel = str(key), int(numel)
    if key not in self._storages:
      need = numel * kind.dtype.itemsize
      raw = read_member(self._zf, f'{self._prefix}data/{key}', self._source)
      if numel < 0 or len(raw) < need:
        raise UnsafePickleError(f'{self._source}: storage {key!r} holds {len(raw)} bytes, not the '
                                f'{numel} elements ({need} bytes) its record claims')
      dtype = kind.dtype.newbyteorder('<' if self._little else '>') if kind.dtype.itemsize > 1 else kind.dtype
      self._budget += MAX_TENSOR_BYTES_RATIO * len(raw)
      arr = np.frombuffer(raw, dtype=dtype, count=numel)  # Read-only, no copy: tensors copy out of it.
      self._storages[key] = arr if arr.dtype.isnative else arr.astype(kind.dtype)
    return self._storages[key]


def _named(fn):
  """`fn(path)`, with any failure a TorchFileError naming the file: a hostile file can make zipfile,
  pickle or numpy raise almost anything (BadZipFile on a CRC, UnicodeDecodeError, OverflowError, ...)."""
  def wrapped(path: str):
    try:
      return fn(path)
    except CheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise TorchFileError(f'{path}: malformed torch file ({brief(e)})') from e
  wrapped.__doc__, wrapped.__name__ = fn.__doc__, fn.__name__
  return wrapped


@_named
def load(path: str) -> tuple[Any, bool]:
  """Returns (unpickled object, is_torchscript) for a zip-format torch file; anything wrong with the
  file raises TorchFileError (UnsafePickleError when refused) naming it."""
  return _load(path)


def _load(path: str) -> tuple[Any, bool]:
  try:
    zf = zipfile.ZipFile(paths.readable(path))  # A gs:// checkpoint is read into memory.
  except zipfile.BadZipFile as e:
    raise UnsafePickleError(f'{path}: not a zip-format torch file ({e}); legacy (pre-1.6) torch '
                            'files are not read: re-save with a current torch.save') from e
  with zf:
    names = zf.namelist()
    pkls = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
    if len(pkls) != 1:
      raise UnsafePickleError(f'{path}: expected one <name>/data.pkl in the archive, found '
                              f'{reprlib.repr(pkls)}')
    prefix = pkls[0][: -len('data.pkl')]
    torchscript = any(n.startswith(prefix + 'code/') for n in names)
    data = read_member(zf, pkls[0], path)
    check_memo(data, path)
    obj = _Unpickler(data, zf, prefix, path, torchscript).load()
  return obj, torchscript


def _items(obj: Any):
  return obj.state.items() if isinstance(obj, Record) else obj.items() if isinstance(obj, dict) else ()


def flatten_state(obj: Any, prefix: str = '') -> dict[str, np.ndarray]:
  """Tensors of a nested dict / TorchScript record tree, keyed 'a.b.c' like a torch state_dict.

  Iterative (a file's nesting depth cannot exhaust the stack), refuses nesting deeper than MAX_DEPTH
  (keys would grow with the depth) and walks each container once (a cycle, or a container referenced
  twice, is not walked again)."""
  out: dict[str, np.ndarray] = {}
  seen = {id(obj)}
  stack = [(prefix, iter(_items(obj)))]
  while stack:
    pre, items = stack[-1]
    for k, v in items:
      key = f'{pre}{k}'
      if isinstance(v, np.ndarray):
        out[key] = v
      elif isinstance(v, (dict, Record)) and id(v) not in seen:
        if len(stack) >= MAX_DEPTH:
          raise TorchFileError(f'containers nested deeper than {MAX_DEPTH} levels at {key[:200]!r}...')
        seen.add(id(v))
        stack.append((key + '.', iter(_items(v))))
        break
    else:
      stack.pop()
  return out


@_named
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
