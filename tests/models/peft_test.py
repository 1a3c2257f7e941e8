"""LoRA and AdaptFormer: counts, zero start equals the backbone, and loading with an adapters file."""
import jax
import numpy as np
import pytest
from flax import traverse_util

from msta_jax import models
from msta_jax.models import checkpoints


@pytest.fixture(scope='module')
def backbone():
  model = models.get_model('tiny_viclip')
  return model, jax.device_get(jax.jit(lambda r: models.init_params(model, r))(jax.random.PRNGKey(0)))


@pytest.mark.parametrize('kw,count', [
    (dict(lora=models.LoRAConfig(rank=4, first_block=2, last_block=2)), 2 * 2 * 2 * 64 * 4),
    (dict(lora=models.LoRAConfig(rank=2, targets=('q', 'k', 'v'), first_block=1, last_block=2)), 2 * 2 * 3 * 2 * 64 * 2),
    (dict(adaptformer=models.AdaptFormerConfig(bottleneck=8, first_block=1, last_block=2)), 2 * 2 * (64 * 8 + 8 + 8 * 64 + 64)),
])
def test_counts_zero_start_and_adapter_file_round_trip(backbone, tmp_path, kw, count):
  base, params = backbone
  model = models.get_model('tiny_viclip', **kw)
  full = models.add_adapters(model, params, jax.random.PRNGKey(1))
  flat = traverse_util.flatten_dict(full, sep='/')
  new = {k: v for k, v in flat.items() if '/lora/' in k or '/adaptmlp/' in k}
  assert sum(v.size for v in new.values()) == count
  video = np.random.RandomState(0).randn(2, 8, 32, 32, 3).astype(np.float32)
  encode = lambda m, p: np.asarray(jax.jit(lambda p, v: m.apply({'params': p}, v, method=m.encode_video))(p, video))
  np.testing.assert_array_equal(encode(model, full), encode(base, params))  # B / up start at zero.
  # Trained-looking weights, written as an adapters file and loaded on top of the saved backbone.
  rng = np.random.RandomState(1)  # Random, not uniform: LayerNorm erases a uniform shift of a token.
  trained = {k: v + rng.normal(0, 0.3, v.shape).astype(np.float32) for k, v in new.items()}
  meta = {k: dict(enabled=True, **{f: (list(x) if isinstance(x, tuple) else x) for f, x in vars(c).items()})
          for k, c in kw.items()}
  checkpoints.write_adapters(str(tmp_path / 'adapters.safetensors'), traverse_util.unflatten_dict(trained, sep='/'), meta)
  models.save(str(tmp_path / 'backbone'), base, params)
  loaded, lparams = models.load(str(tmp_path / 'backbone'), adapters=str(tmp_path / 'adapters.safetensors'))
  want = traverse_util.unflatten_dict({**flat, **trained}, sep='/')
  np.testing.assert_allclose(encode(loaded, lparams), encode(model, want), atol=1e-6)
  assert not np.allclose(encode(loaded, lparams), encode(base, params), atol=1e-4)
