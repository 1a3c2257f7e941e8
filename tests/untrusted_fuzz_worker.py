"""One batch of the fuzz test (tests/untrusted_fuzz_test.py), run in its own process with an
address-space cap: `python -m tests.untrusted_fuzz_worker FORMAT SEED COUNT WORKDIR`.

Builds a small valid file of FORMAT, reads it once (it must read), then reads COUNT seeded mutations of
it and prints one JSON line: each outcome ('ok', or the name of the project error raised, or 'raw: ...'
for anything else), and the peak resident memory over the start of the mutations.
"""
from __future__ import annotations

import json
import os
import random
import resource
import sys
import zipfile

import numpy as np

CAP_BYTES = 3 << 30


def _canonical_tiny() -> dict[str, np.ndarray]:
  """The tensors config_from_canonical reads, at tiny sizes (width 8, 1 block, patch 4, 2x2 grid)."""
  f = lambda *s: np.linspace(-1, 1, int(np.prod(s)), dtype=np.float32).reshape(s)
  return {'visual.conv1.weight': f(8, 3, 4, 4), 'visual.positional_embedding': f(5, 8),
          'visual.transformer.resblocks.0.mlp.c_fc.weight': f(16, 8), 'visual.proj': f(8, 8),
          'token_embedding.weight': f(49408 // 1024, 8), 'positional_embedding': f(4, 8),
          'transformer.resblocks.0.mlp.c_fc.weight': f(16, 8), 'logit_scale': f(1)}


def _pth(work: str, canary: str) -> tuple[str, callable]:
  from msta_jax.models import torch_pickle
  from tests import untrusted_files as uf
  path = uf.write_pth(os.path.join(work, 'base.pth'), {'a': np.arange(6, dtype=np.float32).reshape(2, 3),
                                                      'b.c': np.arange(4, dtype=np.int64)})
  return path, torch_pickle.load_state_dict


def _pickle(work: str, canary: str) -> tuple[str, callable]:
  """The pickle inside a valid archive (so mutations reach the unpickler, not the zip CRC), holding a
  tensor record and, after it, a payload that would create the canary file if it ever ran."""
  from msta_jax.models import torch_pickle
  from tests import untrusted_files as uf
  rec = uf.tensor_record('w', '0', 'FloatStorage', 4, 0, (2, 2), (2, 1))
  exploit = b'X\x01\x00\x00\x00xcos\nsystem\n(X' + len(f'touch {canary}').to_bytes(4, 'little') + \
      f'touch {canary}'.encode() + b'tR'
  pkl = uf.state_dict_pickle([rec, exploit])
  base = os.path.join(work, 'base.pkl')
  with open(base, 'wb') as f:
    f.write(pkl)
  storage = np.arange(4, dtype='<f4').tobytes()

  def read(path):
    with open(path, 'rb') as f:
      data = f.read()
    archive = uf.write_torch_zip(path + '.pth', data, {'0': storage})
    try:
      return torch_pickle.load_state_dict(archive)
    except torch_pickle.UnsafePickleError as e:
      if 'os.system' in str(e) or 'posix.system' in str(e):  # The payload, refused: that is the point.
        return None
      raise
  return base, read


def _safetensors(work: str, canary: str) -> tuple[str, callable]:
  from safetensors.numpy import save_file
  from msta_jax.models import checkpoints
  path = os.path.join(work, 'base.safetensors')
  save_file(_canonical_tiny(), path)
  return path, checkpoints.read_safetensors


def _adapters(work: str, canary: str) -> tuple[str, callable]:
  from msta_jax.models import checkpoints, loading
  path = os.path.join(work, 'adapters.safetensors')
  meta = {'method': 'msta', 'model': {}, 'freeze': [], 'lora': None, 'adaptformer': None,
          'msta': {'first_block': 1, 'last_block': 2, 'bottleneck': 4, 'scale': 0.005}}
  checkpoints.write_adapters(path, {'msta': {'shared_0': {'kernel': np.ones((4, 4), np.float32)}}}, meta)

  def read(p):
    tensors, m = checkpoints.read_adapters(p)
    return tensors, loading._adapter_configs(m, p)  # pylint: disable=protected-access
  return path, read


def _hf_json(work: str, canary: str) -> tuple[str, callable]:
  """An HF directory's config.json (tensors left valid) and its preprocessor_config.json."""
  import shutil
  from safetensors.numpy import save_file
  from msta_jax.models import format_hf
  from tests import untrusted_files as uf
  directory = os.path.join(work, 'hf')
  os.makedirs(directory)
  save_file(_canonical_tiny(), os.path.join(directory, 'model.safetensors'))
  cfg = uf.hf_config(8, 8)
  for tower in ('vision_config', 'text_config'):
    cfg[tower]['num_attention_heads'] = 2
  cfg['text_config']['eos_token_id'] = 47
  base = os.path.join(work, 'config.json')
  with open(base, 'w') as f:
    json.dump({**cfg, 'preprocessor': {'image_mean': [0.4, 0.4, 0.4], 'image_std': [0.2, 0.2, 0.2]}}, f)

  def read(path):
    with open(path, 'rb') as f:
      data = f.read()
    with open(os.path.join(directory, 'config.json'), 'wb') as f:
      f.write(data)
    try:  # The preprocessor part of the mutated JSON becomes preprocessor_config.json when it parses.
      pre = json.loads(data).get('preprocessor')
      with open(os.path.join(directory, 'preprocessor_config.json'), 'w') as f:
        f.write(json.dumps(pre))
    except Exception:  # pylint: disable=broad-except
      shutil.copy(path, os.path.join(directory, 'preprocessor_config.json'))
    return format_hf.read(directory)
  return base, read


def _own_json(work: str, canary: str) -> tuple[str, callable]:
  """config.json of a msta_jax directory (its model.safetensors then fails the strict fill)."""
  from safetensors.numpy import save_file
  from msta_jax.models import checkpoints, clip
  directory = os.path.join(work, 'own')
  os.makedirs(directory)
  save_file({'x': np.zeros(2, np.float32)}, os.path.join(directory, 'model.safetensors'))
  base = os.path.join(work, 'own_config.json')
  with open(base, 'w') as f:
    json.dump({'format': 'msta_jax', 'model': clip.ModelConfig().to_dict()}, f)

  def read(path):
    with open(path, 'rb') as f, open(os.path.join(directory, 'config.json'), 'wb') as g:
      g.write(f.read())
    return checkpoints.read_own(directory, lambda cfg: {'x': np.zeros(2, np.float32)})
  return base, read


def _video(ext: str):
  def make(work: str, canary: str) -> tuple[str, callable]:
    from msta_jax.data import decode
    from tests.data.decode_test import write_video
    path = write_video(os.path.join(work, f'base.{ext}'), frames=12, width=32, height=24, fps=12)

    def read(p):
      v = decode.decode_for_storage(p, decode.StorageOptions(short_side=16, max_frames=8)).verdict
      if v.status not in decode.REASONS and v.status != decode.OK or (v.reason and v.reason not in
                                                                        decode.REASONS[v.status]):
        raise AssertionError(f'unknown verdict {v}')
      if v.reason == 'error':  # The catch-all: a reader raised something it should have judged.
        raise AssertionError(f'raw exception inside the decoder: {v.detail}')
      return v
    return path, read
  return make


FORMATS = {'pth': _pth, 'pickle': _pickle, 'safetensors': _safetensors, 'adapters': _adapters,
           'hf_json': _hf_json, 'own_json': _own_json, 'avi': _video('avi'), 'mp4': _video('mp4')}


def main(fmt: str, seed: int, count: int, work: str) -> None:
  resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))
  from msta_jax.models.errors import CheckpointError
  canary = os.path.join(work, 'CANARY')
  base, read = FORMATS[fmt](work, canary)
  read(base)  # The unmutated file reads (and warms every import up).
  with open(base, 'rb') as f:
    data = f.read()
  from tests import untrusted_files as uf
  rng = random.Random(seed)
  start = uf.peak_rss_bytes()
  outcomes = []
  for i in range(count):
    path = os.path.join(work, f'm{i}{os.path.splitext(base)[1]}')
    with open(path, 'wb') as f:
      f.write(uf.mutate(data, rng))
    try:
      read(path)
      outcomes.append('ok')
    except (CheckpointError, zipfile.BadZipFile) as e:
      outcomes.append(type(e).__name__ if isinstance(e, CheckpointError) else f'raw: {e!r}'[:300])
    except Exception as e:  # pylint: disable=broad-except
      outcomes.append(f'raw: {type(e).__name__}: {e}'[:300])
    os.remove(path)
  peak = uf.peak_rss_bytes()
  print(json.dumps({'format': fmt, 'outcomes': outcomes, 'peak_over_start': peak - start,
                    'file_bytes': len(data), 'canary': os.path.exists(canary)}))


if __name__ == '__main__':
  main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
