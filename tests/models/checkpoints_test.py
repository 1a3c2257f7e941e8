"""Strict loading: every key consumed, every parameter filled; clear errors; own-format round trip."""
import json
import os

import jax
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from msta_jax import models
from msta_jax.models import checkpoints as ckpt


@pytest.fixture(scope='module')
def hf_dir(tmp_path_factory):
  from tests.models import refs  # Lazy, as it needs torch: the tests without hf_dir run without it.
  path = str(tmp_path_factory.mktemp('hf'))
  refs.hf_clip(refs.SMALL_VISION, refs.SMALL_TEXT, projection_dim=48).save_pretrained(path)
  return path


def _edit_copy(src, dst, edit):
  os.makedirs(dst, exist_ok=True)
  tensors = load_file(os.path.join(src, 'model.safetensors'))
  edit(tensors)
  save_file(tensors, os.path.join(dst, 'model.safetensors'))
  with open(os.path.join(src, 'config.json')) as f, open(os.path.join(dst, 'config.json'), 'w') as g:
    g.write(f.read())
  return dst


def test_missing_key_is_named(hf_dir, tmp_path):
  path = _edit_copy(hf_dir, str(tmp_path), lambda t: t.pop('vision_model.post_layernorm.bias'))
  with pytest.raises(ckpt.CheckpointError, match=r'1 missing: visual\.ln_post\.bias'):
    models.load(path)


def test_unexpected_key_is_named(hf_dir, tmp_path):
  path = _edit_copy(hf_dir, str(tmp_path), lambda t: t.update(extra_head=np.zeros(3, np.float32)))
  with pytest.raises(ckpt.CheckpointError, match='1 unexpected: extra_head'):
    models.load(path)


def test_incomplete_qkv_reports_both_sides(hf_dir, tmp_path):
  path = _edit_copy(hf_dir, str(tmp_path),
                    lambda t: t.pop('text_model.encoder.layers.1.self_attn.k_proj.weight'))
  with pytest.raises(ckpt.CheckpointError) as e:
    models.load(path)
  assert 'transformer.resblocks.1.attn.in_proj_weight' in str(e.value)
  assert 'transformer.resblocks.1.self_attn.q_proj.weight' in str(e.value)


def test_mis_shaped_key_is_named(hf_dir, tmp_path):
  def edit(t):
    t['vision_model.encoder.layers.0.mlp.fc2.bias'] = np.zeros(95, np.float32)
  with pytest.raises(ckpt.CheckpointError, match=r'mis-shaped: visual\.transformer\.resblocks\.0\.mlp\.c_proj\.bias'):
    models.load(_edit_copy(hf_dir, str(tmp_path), edit))


def test_wrong_file_types_get_clear_errors(tmp_path):
  bad = tmp_path / 'notes.txt'
  bad.write_text('hello')
  with pytest.raises(ckpt.CheckpointError, match='unrecognised file'):
    models.load(str(bad))
  with pytest.raises(FileNotFoundError, match='no such file'):
    models.load(str(tmp_path / 'absent'))
  (tmp_path / 'd').mkdir()
  (tmp_path / 'd' / 'config.json').write_text(json.dumps({'model_type': 'bert'}))
  with pytest.raises(ckpt.CheckpointError, match='neither an HF CLIP config'):
    models.load(str(tmp_path / 'd'))
  corrupt = tmp_path / 'c'
  corrupt.mkdir()
  (corrupt / 'config.json').write_text(json.dumps({'model_type': 'clip'}))
  (corrupt / 'model.safetensors').write_bytes(b'\x00' * 64)
  with pytest.raises(ckpt.CheckpointError, match='not a readable safetensors'):
    models.load(str(corrupt))


def test_hf_pytorch_bin_reads_without_torch_load(hf_dir, tmp_path):
  from tests.models import refs
  from tests.torch_or_skip import torch
  hf = refs.hf_clip(refs.SMALL_VISION, refs.SMALL_TEXT, projection_dim=48)
  # What save_pretrained(safe_serialization=False) wrote until transformers 5, which writes safetensors only.
  hf.config.save_pretrained(str(tmp_path))
  torch.save(hf.state_dict(), str(tmp_path / 'pytorch_model.bin'))
  _, p_bin = models.load(str(tmp_path))
  _, p_st = models.load(hf_dir)
  jax.tree.map(np.testing.assert_array_equal, p_bin, p_st)


def test_own_format_round_trip_and_strictness(hf_dir, tmp_path):
  model, params = models.load(hf_dir)
  models.save(str(tmp_path / 'own'), model, params)
  model2, params2 = models.load(str(tmp_path / 'own'))
  assert model2.cfg == model.cfg
  jax.tree.map(np.testing.assert_array_equal, params, params2)
  tensors = load_file(str(tmp_path / 'own' / 'model.safetensors'))
  tensors.pop('logit_scale')
  save_file(tensors, str(tmp_path / 'own' / 'model.safetensors'))
  with pytest.raises(ckpt.CheckpointError, match='1 missing: logit_scale'):
    models.load(str(tmp_path / 'own'))


def test_named_configs_build_abstractly():
  counts = {}
  for name in models.CONFIGS:
    shapes = models.param_shapes(models.get_model(name))
    counts[name] = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  # ViCLIP-B/16 from its constructors (viclip.md): 149,603,841 incl. `temp`.
  assert counts['viclip_b16'] == 149_603_841
  # OpenAI CLIP ViT-B/16 minus its 3 JIT extras: 149,620,737 (77-token text, no temporal embedding).
  assert counts['clip_b16'] == 149_620_737


_WRITE_ADAPTERS = '''
import sys, numpy as np
from msta_jax.models import checkpoints
trained = {'msta': {'shared_0': {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3), 'bias': np.ones(3, np.float32)}}}
checkpoints.write_adapters(sys.argv[1], trained, {'method': 'msta', 'model': {'width': 64}, 'a': [1, 2]})
'''


def test_adapters_files_are_byte_identical_across_processes(tmp_path):
  """safetensors orders its metadata map by a per-process hash; one metadata key keeps files equal."""
  import subprocess
  import sys
  paths = [tmp_path / f'{i}.safetensors' for i in range(6)]
  for p in paths:
    subprocess.run([sys.executable, '-c', _WRITE_ADAPTERS, str(p)], check=True, capture_output=True)
  assert len({p.read_bytes() for p in paths}) == 1
  tensors, meta = ckpt.read_adapters(str(paths[0]))
  assert meta == {'method': 'msta', 'model': {'width': 64}, 'a': [1, 2]}
  np.testing.assert_array_equal(tensors['msta/shared_0/kernel'], np.arange(6).reshape(2, 3))


def test_adapters_reader_names_a_foreign_safetensors_file(tmp_path):
  path = str(tmp_path / 'other.safetensors')
  save_file({'w': np.zeros(2, np.float32)}, path, metadata={'format': 'pt'})
  with pytest.raises(ckpt.CheckpointError, match="no 'msta_jax.adapters' entry; keys: \\['format'\\]"):
    ckpt.read_adapters(path)
