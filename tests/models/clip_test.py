"""Parity of the Flax CLIP against HF transformers' PyTorch CLIP (fp32, CPU), loaded via models.load."""
import numpy as np
import pytest
import jax
import jax.numpy as jnp

from msta_jax import models
from tests.models import refs

TOL = 1e-4  # Max abs error relative to the reference's scale (max |value|).


def _rel_err(ours, ref):
  return float(np.max(np.abs(np.asarray(ours) - ref)) / np.max(np.abs(ref)))


def _texts():
  return ['a photo of a cat.', 'Playing the VIOLIN, outdoors!!', '',
          'a very long sentence ' * 20, 'café crème & naïve résumé']


@pytest.fixture(scope='module')
def small(tmp_path_factory):
  hf = refs.hf_clip(refs.SMALL_VISION, refs.SMALL_TEXT, projection_dim=48)
  path = str(tmp_path_factory.mktemp('hf_small'))
  hf.save_pretrained(path)
  model, params = models.load(path)
  return hf, model, params


def test_small_config_comes_from_checkpoint(small):
  _, model, _ = small
  cfg = model.cfg
  assert (cfg.vision.width, cfg.vision.layers, cfg.vision.heads, cfg.vision.mlp_dim) == (96, 2, 3, 200)
  assert (cfg.vision.patch_size, cfg.vision.image_size) == (8, 40)
  assert (cfg.text.width, cfg.text.heads, cfg.text.mlp_dim, cfg.text.context_length) == (64, 2, 136, 24)
  assert cfg.embed_dim == 48 and cfg.video_mode == 'frame_average'


@pytest.mark.parametrize('jit', [False, True])
def test_small_image_parity(small, jit):
  hf, model, params = small
  images = np.random.RandomState(1).randn(3, 40, 40, 3).astype(np.float32)
  fn = lambda p, x: model.apply({'params': p}, x, method=model.encode_image)
  ours = (jax.jit(fn) if jit else fn)(params, images)
  assert ours.shape == (3, 48)
  assert _rel_err(ours, refs.image_features(hf, images)) <= TOL


@pytest.mark.parametrize('jit', [False, True])
def test_small_text_parity(small, jit):
  hf, model, params = small
  ids, mask = models.Tokenizer(24)(_texts())
  assert (ids[:, -1][mask[:, -1]] == 49407).all()  # The long text is cut with EOT kept last.
  fn = lambda p, x: model.apply({'params': p}, x, method=model.encode_text)
  ours = (jax.jit(fn) if jit else fn)(params, ids)
  assert _rel_err(ours, refs.text_features(hf, ids)) <= TOL


def test_frame_average_video_is_mean_of_frames(small):
  hf, model, params = small
  videos = np.random.RandomState(2).randn(2, 3, 40, 40, 3).astype(np.float32)
  ours = model.apply({'params': params}, videos, method=model.encode_video)
  ref = refs.image_features(hf, videos.reshape(6, 40, 40, 3)).reshape(2, 3, -1).mean(1)
  assert _rel_err(ours, ref) <= TOL


def test_bf16_compute_stays_close(small):
  hf, model, params = small
  images = np.random.RandomState(3).randn(2, 40, 40, 3).astype(np.float32)
  m16 = models.get_model(model.cfg, dtype=jnp.bfloat16)
  ours = m16.apply({'params': params}, images, method=m16.encode_image)
  assert ours.dtype == jnp.float32  # Embeddings leave in float32 (models/precision.py).
  assert _rel_err(ours, refs.image_features(hf, images)) < 0.05


@pytest.mark.slow
def test_full_b16_parity(tmp_path):
  hf = refs.hf_clip(refs.B16_VISION, refs.B16_TEXT, projection_dim=512, seed=1)
  hf.save_pretrained(str(tmp_path))
  model, params = models.load(str(tmp_path))
  assert model.cfg == models.CONFIGS['clip_b16']
  images = np.random.RandomState(4).randn(2, 224, 224, 3).astype(np.float32)
  img = jax.jit(lambda p, x: model.apply({'params': p}, x, method=model.encode_image))(params, images)
  assert _rel_err(img, refs.image_features(hf, images)) <= TOL
  ids, _ = models.Tokenizer(77)(_texts())
  txt = jax.jit(lambda p, x: model.apply({'params': p}, x, method=model.encode_text))(params, ids)
  assert _rel_err(txt, refs.text_features(hf, ids)) <= TOL
