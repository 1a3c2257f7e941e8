"""Hostile HF directories, msta_jax directories and adapters files: each refused with a CheckpointError
naming the file and what is wrong (values that would run but compute something wrong included)."""
import json
import math
import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from msta_jax import models
from msta_jax.models import checkpoints as ckpt
from tests import untrusted_files as uf

_MSTA = models.MSTAConfig(first_block=1, last_block=2, bottleneck=4)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
  """An HF-style directory (canonical tensors + HF config.json), a msta_jax directory and an adapters
  file, all of tiny_clip."""
  import jax
  root = tmp_path_factory.mktemp('untrusted')
  model = models.get_model('tiny_clip')
  # Values do not matter here, shapes do: filled from the abstract tree (an eager init takes ~1 min
  # on a loaded machine).
  rng = np.random.default_rng(0)
  full = jax.tree.map(lambda s: rng.normal(0, 0.02, s.shape).astype(np.float32),
                      models.param_shapes(models.get_model('tiny_clip', msta=_MSTA)))
  backbone = {k: v for k, v in full.items() if k != 'msta'}
  hf = str(root / 'hf')
  os.makedirs(hf)
  save_file(uf.canonical_state_dict(backbone), os.path.join(hf, 'model.safetensors'))
  with open(os.path.join(hf, 'config.json'), 'w') as f:
    json.dump(uf.hf_config(), f)
  own = str(root / 'own')
  models.save(own, model, backbone)
  adapters = str(root / 'adapters.safetensors')
  ckpt.write_adapters(adapters, {'msta': full['msta']}, _adapters_meta())
  return {'hf': hf, 'own': own, 'adapters': adapters, 'root': root}


def _adapters_meta(**msta):
  return {'method': 'msta', 'model': models.get_config('tiny_clip').to_dict(), 'freeze': [],
          'msta': {**_MSTA.to_dict(), **msta}, 'lora': None, 'adaptformer': None}


def _copy(src, dst):
  shutil.copytree(src, dst)
  return str(dst)


def _edit_json(path, edit):
  with open(path) as f:
    obj = json.load(f)
  edit(obj)
  with open(path, 'w') as f:
    json.dump(obj, f)


def test_valid_files_load(files):
  cfg, _, _ = models.loading.read_checkpoint(files['hf'])
  assert (cfg.vision.heads, cfg.text.eot_id, cfg.ln_eps) == (2, models.get_config('tiny_clip').text.vocab_size - 1, 1e-5)
  model, params = models.load(files['own'], adapters=files['adapters'])
  assert model.msta == _MSTA and params['msta']['shared_0']['kernel'].shape == (4, 4)


_HF_CASES = {
    'heads_zero': (lambda c: c['vision_config'].update(num_attention_heads=0), r'vision heads 0 must be > 0'),
    'heads_not_dividing': (lambda c: c['text_config'].update(num_attention_heads=3),
                           'text heads 3 must be > 0 and divide the width 64'),
    'heads_string': (lambda c: c['vision_config'].update(num_attention_heads='2'), "num_attention_heads='2' should be int"),
    'eos_huge': (lambda c: c['text_config'].update(eos_token_id=10**9), r'eot \(pooling\) token id 1000000000 outside'),
    'eos_negative': (lambda c: c['text_config'].update(eos_token_id=-5), 'token id -5 outside the vocabulary'),
    'eps_nan': (lambda c: c['vision_config'].update(layer_norm_eps=math.nan), 'layer norm eps nan must be finite'),
    'eps_negative': (lambda c: c['vision_config'].update(layer_norm_eps=-1e-5), r'layer norm eps -1e-05'),
    'vision_config_list': (lambda c: c.update(vision_config=[1]), 'vision_config=\\[1\\] should be dict'),
}


@pytest.mark.parametrize('case', sorted(_HF_CASES))
def test_hf_config_values_that_compute_wrong_are_refused(files, tmp_path, case):
  edit, message = _HF_CASES[case]
  path = _copy(files['hf'], tmp_path / 'hf')
  _edit_json(os.path.join(path, 'config.json'), edit)
  with pytest.raises(ckpt.CheckpointError, match=message) as e:
    models.loading.read_checkpoint(path)
  assert path in str(e.value)


@pytest.mark.parametrize('pre,message', [
    ({'image_mean': [0.5, 0.5], 'image_std': [0.2, 0.2, 0.2]}, 'image_mean=\\[0.5, 0.5\\] should be 3 finite numbers'),
    ({'image_std': [0.0, 0.0, 0.0]}, r'std \(0.0, 0.0, 0.0\) finite and > 0'),
    ({'image_std': 'abc'}, "image_std='abc' should be list"),
])
def test_hf_preprocessor_values_are_checked(files, tmp_path, pre, message):
  path = _copy(files['hf'], tmp_path / 'hf')
  with open(os.path.join(path, 'preprocessor_config.json'), 'w') as f:
    json.dump(pre, f)
  with pytest.raises(ckpt.CheckpointError, match=message):
    models.loading.read_checkpoint(path)


@pytest.mark.parametrize('name,text,message', [
    ('config.json', '{"model_type": "clip",', 'config.json: not a readable JSON file \\(JSONDecodeError'),
    ('config.json', '[' * 100_000 + ']' * 100_000, 'config.json: not a readable JSON file \\(RecursionError'),
    ('config.json', '[1, 2]', 'config.json: expected a JSON object, found list'),
    ('preprocessor_config.json', b'\xff\xfe{', 'preprocessor_config.json: not a readable JSON file'),
])
def test_broken_json_is_named(files, tmp_path, name, text, message):
  path = _copy(files['hf'], tmp_path / 'hf')
  with open(os.path.join(path, name), 'wb') as f:
    f.write(text if isinstance(text, bytes) else text.encode())
  with pytest.raises(ckpt.CheckpointError, match=message):
    models.loading.read_checkpoint(path)


def test_own_directory_errors_are_named(files, tmp_path):
  path = _copy(files['own'], tmp_path / 'own')
  cfg_path = os.path.join(path, 'config.json')
  _edit_json(cfg_path, lambda c: c['model']['text'].update(heads='8'))
  with pytest.raises(ckpt.CheckpointError, match=r"config.json: bad \"model\" entry \(ValueError: TextConfig.heads='8'"):
    models.load(path)
  _edit_json(cfg_path, lambda c: c['model']['text'].update(heads=2, eot_id=10**6))
  with pytest.raises(ckpt.CheckpointError, match='token id 1000000 outside'):
    models.load(path)
  _edit_json(cfg_path, lambda c: c['model']['text'].update(eot_id=5))
  st = os.path.join(path, 'model.safetensors')
  tensors = load_file(st)
  tensors['logit_scale'] = tensors['logit_scale'].view(np.int32)  # float bytes labelled I32
  save_file(tensors, st)
  with pytest.raises(ckpt.CheckpointError, match=r'model.safetensors: tensors that are not float32 .*logit_scale: int32'):
    models.load(path)
  with open(st, 'r+b') as f:
    f.truncate(100)
  with pytest.raises(ckpt.CheckpointError, match='model.safetensors: not a readable safetensors file'):
    models.load(path)


def _rewrite_adapters(src, dst, meta=None, edit=None):
  tensors = load_file(src)
  if edit:
    edit(tensors)
  text = meta if isinstance(meta, str) else json.dumps(meta or _adapters_meta())
  save_file(tensors, dst, metadata={ckpt.ADAPTERS_FORMAT: text})
  return dst


_ADAPTER_CASES = {
    'scale_nan': ({'meta': _adapters_meta(scale=math.nan)}, 'MSTAConfig.scale=nan: must be a finite number'),
    'unknown_msta_key': ({'meta': _adapters_meta(scael=0.1)}, r"unknown MSTAConfig keys \['scael'\]"),
    'unknown_top_key': ({'meta': {**_adapters_meta(), 'mstaa': {}}}, r"unknown adapters metadata keys \['mstaa'\]"),
    'bottleneck_string': ({'meta': _adapters_meta(bottleneck='4')}, "MSTAConfig.bottleneck='4': expected int"),
    'bottleneck_zero': ({'meta': _adapters_meta(bottleneck=0)}, 'MSTAConfig.bottleneck=0: must be >= 1'),
    'shared_int': ({'meta': _adapters_meta(shared=1)}, 'MSTAConfig.shared=1: expected bool'),
    'section_list': ({'meta': {**_adapters_meta(), 'msta': [1]}}, "'msta' is a list, not an object"),
    'bad_json': ({'meta': '{"msta": '}, 'adapters metadata is not valid JSON'),
    'json_list': ({'meta': '[]'}, 'adapters metadata is a JSON list'),
    'int32_labelled': ({'edit': lambda t: t.update({'msta/shared_0/kernel': t['msta/shared_0/kernel'].view(np.int32)})},
                       'msta/shared_0/kernel: int32'),
}


@pytest.mark.parametrize('case', sorted(_ADAPTER_CASES))
def test_hostile_adapters_are_refused_naming_the_file(files, tmp_path, case):
  kwargs, message = _ADAPTER_CASES[case]
  path = _rewrite_adapters(files['adapters'], str(tmp_path / f'{case}.safetensors'), **kwargs)
  with pytest.raises(ckpt.CheckpointError, match=message) as e:
    models.load(files['own'], adapters=path)
  assert path in str(e.value)


def test_truncated_adapters_file_is_a_checkpoint_error(files, tmp_path):
  path = str(tmp_path / 'cut.safetensors')
  with open(files['adapters'], 'rb') as f, open(path, 'wb') as g:
    g.write(f.read()[:50])
  with pytest.raises(ckpt.CheckpointError, match='cut.safetensors: not a readable safetensors file'):
    ckpt.read_adapters(path)


def test_tensors_that_do_not_fit_together_are_named(files, tmp_path):
  path = _copy(files['hf'], tmp_path / 'hf')
  st = os.path.join(path, 'model.safetensors')
  tensors = load_file(st)
  w = tensors.pop('transformer.resblocks.0.attn.in_proj_weight')
  d = w.shape[1]
  prefix = 'text_model.encoder.layers.0.self_attn'
  tensors.update({f'{prefix}.q_proj.weight': w[:d], f'{prefix}.k_proj.weight': w[d:2 * d, :3],
                  f'{prefix}.v_proj.weight': w[2 * d:]})  # k of another width: cannot be concatenated
  save_file(tensors, st)
  with pytest.raises(ckpt.CheckpointError, match=r'hf: inconsistent checkpoint \(ValueError'):
    models.loading.read_checkpoint(path)
  tensors = load_file(os.path.join(files['hf'], 'model.safetensors'))
  tensors['visual.conv1.weight'] = tensors['visual.conv1.weight'][:, :, :, :, None]  # 5 axes
  save_file(tensors, st)
  with pytest.raises(ckpt.CheckpointError, match='visual.conv1.weight has shape'):
    models.load(path)
