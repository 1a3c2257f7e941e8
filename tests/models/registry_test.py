"""The adapter registry: strict config translation both ways, and adapters files from before it."""
import json

import numpy as np
import pytest
from flax import traverse_util
from safetensors.numpy import save_file

from configs import base
from msta_jax import models
from msta_jax.models import checkpoints


def test_adapter_configs_are_strict_and_skip_disabled_families():
  got = models.adapter_configs({'msta': {'enabled': True, 'first_block': 2, 'bottleneck': 8},
                                'lora': {'enabled': False, 'rank': 4}, 'adaptformer': None})
  assert got == {'msta': models.MSTAConfig(first_block=2, bottleneck=8)}
  lora = models.adapter_configs({'lora': {'targets': ['q', 'k']}})['lora']  # JSON lists become tuples.
  assert lora == models.LoRAConfig(targets=('q', 'k'))
  with pytest.raises(ValueError, match=r"unknown MSTAConfig keys \['bottlneck'\]; known: \['bottleneck'"):
    models.adapter_configs({'msta': {'enabled': True, 'bottlneck': 8}})
  with pytest.raises(ValueError, match="msta.cls_mode='first'"):  # Each config validates on construction.
    models.adapter_configs({'msta': {'cls_mode': 'first'}})
  with pytest.raises(ValueError, match=r"lora: rank must be >= 1"):
    models.adapter_configs({'lora': {'rank': 0}})


def test_to_dict_round_trips_through_json():
  for cfg in (models.MSTAConfig(first_block=3, shared=False), models.LoRAConfig(targets=('k',)),
              models.AdaptFormerConfig(bottleneck=4), models.CONFIGS['viclip_b16']):
    assert type(cfg).from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
  with pytest.raises(ValueError, match=r"unknown VisionConfig keys \['depth'\]"):
    models.ModelConfig.from_dict({'vision': {'depth': 3}})


def test_adapters_file_written_before_the_strict_translation_loads(tmp_path):
  """Before, the trainer stored the raw ConfigDict section, `enabled` included: dict(config.msta)."""
  config = base.get_config()
  config.msta.first_block, config.msta.last_block, config.msta.bottleneck = 1, 2, 8
  backbone = models.get_model('tiny_viclip')
  msta = models.MSTAConfig(first_block=1, last_block=2, bottleneck=8)
  adapted = models.get_model('tiny_viclip', msta=msta)
  rng = np.random.RandomState(0)  # Random values in the model's shapes: nothing to compile.
  full = {k: rng.normal(0, 0.05, s.shape).astype(np.float32)
          for k, s in traverse_util.flatten_dict(models.param_shapes(adapted), sep='/').items()}
  params = traverse_util.unflatten_dict({k: v for k, v in full.items() if not k.startswith('msta/')}, sep='/')
  trained = {k: v for k, v in full.items() if k.startswith('msta/')}
  old_meta = {'method': 'msta', 'model': backbone.cfg.to_dict(), 'msta': dict(config.msta), 'lora': None,
              'adaptformer': None, 'freeze': [list(r) for r in config.freeze]}
  assert old_meta['msta']['enabled'] is True
  path = str(tmp_path / 'adapters.safetensors')
  save_file(dict(sorted(trained.items())), path,
            metadata={checkpoints.ADAPTERS_FORMAT: json.dumps(old_meta, sort_keys=True)})
  models.save(str(tmp_path / 'backbone'), backbone, params)

  model, loaded = models.load(str(tmp_path / 'backbone'), adapters=path)
  assert model.msta == msta and model.lora is None and model.adaptformer is None
  flat = traverse_util.flatten_dict(loaded, sep='/')
  assert set(flat) == set(full)
  for k, v in trained.items():
    np.testing.assert_array_equal(flat[k], v)
  np.testing.assert_array_equal(flat['visual/proj'], params['visual']['proj'])

  # A key the config classes do not know is an error now, not silently dropped.
  bad = dict(old_meta, msta=dict(old_meta['msta'], kernel_size=3))
  save_file(dict(sorted(trained.items())), path, metadata={checkpoints.ADAPTERS_FORMAT: json.dumps(bad)})
  with pytest.raises(ValueError, match=r"unknown MSTAConfig keys \['kernel_size'\]"):
    models.load(str(tmp_path / 'backbone'), adapters=path)
