"""The mixed-precision policy (models/precision.py): what bfloat16 keeps, and that float32 is unchanged."""
import dataclasses
import hashlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax import models
from msta_jax.models import adapters, peft, precision
from msta_jax.models import transformer as tfm

WIDTH, HEADS, FRAMES, PATCHES = 64, 2, 4, 4
ONE_BLOCK = adapters.MSTAConfig(first_block=1, last_block=1, bottleneck=16, up_init='kaiming')


class _OneAdaptedBlock(nn.Module):
  """One transformer block of a joint (ViCLIP-style) video sequence, with or without its MSTA adapter."""
  dtype: object
  adapted: bool

  @nn.compact
  def __call__(self, x):
    msta = adapters.MSTA(ONE_BLOCK, WIDTH, WIDTH, 1, 1, self.dtype, name='msta')
    block = tfm.Transformer(1, HEADS, 4 * WIDTH, dtype=self.dtype, name='transformer')
    return block(x, adapters=msta.video_factory(FRAMES, joint=True) if self.adapted else None)


def test_adapter_contribution_survives_bf16_on_a_stream_of_std_5():
  """lambda * A (rms 0.002 here) added to a residual stream of std 5: the block's output with the
  adapter minus without it, bfloat16 compute against float32.

  Before the policy (b440921: bf16 residual stream, lambda * A cast to bf16 before the add) the same
  measurement gave a relative L2 error of 0.92 (the added term kept 54% of its norm, the rest noise);
  with it, 0.0037.
  """
  x = 5.0 * jax.random.normal(jax.random.PRNGKey(0), (2, 1 + PATCHES * FRAMES, WIDTH))
  params = _OneAdaptedBlock(jnp.float32, True).init(jax.random.PRNGKey(1), x)

  def contribution(dtype):
    with_adapter = _OneAdaptedBlock(dtype, True).apply(params, x)
    without = _OneAdaptedBlock(dtype, False).apply(params, x)
    assert with_adapter.dtype == without.dtype == jnp.float32  # The stream stays float32.
    return with_adapter - without

  ref, got = contribution(jnp.float32), contribution(jnp.bfloat16)
  assert 1e-3 < float(jnp.sqrt(jnp.mean(ref ** 2))) < 1e-2  # Small against the stream, as in MSTA.
  assert float(jnp.linalg.norm(got - ref) / jnp.linalg.norm(ref)) < 0.02


def _cosine(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _inputs(cfg, batch=2, texts=3):
  v = cfg.vision
  videos = np.random.RandomState(2).randn(batch, v.num_frames, v.image_size, v.image_size, 3).astype(np.float32)
  ids = np.zeros((texts, cfg.text.context_length), np.int32)
  ids[:, 0] = 49406
  ids[:, 1:5] = np.random.RandomState(3).randint(1, 49000, (texts, 4))
  ids[:, 5] = 49407
  return jnp.asarray(videos), jnp.asarray(ids)


def _embeddings(cfg, params, dtype, extra):
  model = models.get_model(cfg, dtype=dtype, **extra)
  videos, ids = _inputs(cfg)
  fn = jax.jit(lambda p: (model.apply({'params': p}, videos, method=model.encode_video),
                          model.apply({'params': p}, ids, method=model.encode_text)))
  return fn(params)


_B16 = models.get_config('viclip_b16')
# ViCLIP-B/16's widths and heads, 4 blocks per tower (compile time), 4 frames of 2x2 patches.
_BASE = dataclasses.replace(_B16, vision=dataclasses.replace(_B16.vision, image_size=32, num_frames=4, layers=4),
                            text=dataclasses.replace(_B16.text, layers=4))


@pytest.mark.parametrize('cfg', [models.get_config('tiny_viclip'), models.get_config('tiny_clip'), _BASE],
                         ids=['tiny_viclip', 'tiny_clip', 'viclip_b16_widths'])
def test_bf16_embeddings_keep_cosine_to_fp32(cfg):
  extra = {'msta': adapters.MSTAConfig(first_block=1, last_block=cfg.vision.layers, bottleneck=16,
                                       up_init='kaiming')}
  params = jax.jit(lambda r: models.init_params(models.get_model(cfg, **extra), r))(jax.random.PRNGKey(1))
  v32, t32 = _embeddings(cfg, params, jnp.float32, extra)
  v16, t16 = _embeddings(cfg, params, jnp.bfloat16, extra)
  assert v16.dtype == t16.dtype == jnp.float32  # Embeddings leave the model in float32.
  assert _cosine(v16, v32).min() >= 0.999
  assert _cosine(t16, t32).min() >= 0.999


def _fp32_outputs():
  """tiny_viclip with MSTA (non-zero up), LoRA and AdaptFormer (non-zero B / up), float32: video and
  text embeddings and the gradient of their similarity sum w.r.t. every parameter."""
  extra = dict(msta=adapters.MSTAConfig(first_block=1, last_block=2, up_init='kaiming', bottleneck=16),
               lora=peft.LoRAConfig(first_block=2, last_block=2, rank=4),
               adaptformer=peft.AdaptFormerConfig(first_block=1, last_block=1, bottleneck=8))
  model = models.get_model('tiny_viclip', **extra)
  params = models.init_params(model, jax.random.PRNGKey(1))
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: x + 0.05 * jax.random.normal(jax.random.PRNGKey(len(jax.tree_util.keystr(p))), x.shape)
      if 'lora_q_b' in jax.tree_util.keystr(p) or 'adaptmlp' in jax.tree_util.keystr(p) else x, params)
  videos, ids = _inputs(model.cfg)

  def encode(p):
    return (model.apply({'params': p}, videos, method=model.encode_video),
            model.apply({'params': p}, ids, method=model.encode_text))

  def similarity(p):
    v, t = encode(p)
    return jnp.sum(v @ t.T)

  video, text = jax.jit(encode)(params)
  grads = jax.jit(jax.grad(similarity))(params)
  return np.asarray(video), np.asarray(text), jax.tree_util.tree_flatten_with_path(grads)[0]


def _digest(arrays) -> str:
  h = hashlib.sha256()
  for a in arrays:
    h.update(np.ascontiguousarray(a, np.float32).tobytes())
  return h.hexdigest()[:16]


# Computed with this file's _fp32_outputs at b440921 (before the policy), jax 0.10.2, XLA:CPU. The
# gradients' bits depend on the number of host devices XLA:CPU is given (1: a plain run; 8: the suite).
_BEFORE = {'video': '29b8e4778f437b3d', 'text': 'da64070469c5ee87',
           'grads': {1: '6bca4efe8a64da69', 8: 'a7cb45c9630d1329'},
           'video_head': [-1.0119434595108032, -1.377899408340454, 0.9966037273406982, -0.04753905162215233],
           'text_head': [0.8349877595901489, -1.484785795211792, -0.25079771876335144, 0.2251376509666443]}


def test_fp32_path_is_bit_identical_to_before_the_policy():
  video, text, grads = _fp32_outputs()
  assert video.dtype == text.dtype == np.float32
  # The leading values pin the numbers on any XLA build; the digests pin every bit where the build is
  # the one they were computed on.
  np.testing.assert_allclose(video[0, :4], _BEFORE['video_head'], rtol=1e-5)
  np.testing.assert_allclose(text[0, :4], _BEFORE['text_head'], rtol=1e-5)
  if jax.__version__ == '0.10.2' and jax.default_backend() == 'cpu':
    assert _digest([video]) == _BEFORE['video']
    assert _digest([text]) == _BEFORE['text']
    if jax.device_count() in _BEFORE['grads']:
      assert _digest([g for _, g in grads]) == _BEFORE['grads'][jax.device_count()]


def test_float16_is_refused_with_the_reason():
  with pytest.raises(ValueError, match="config.model.dtype='float16': float16 was removed: it needs dynamic loss"):
    precision.compute_dtype('float16')
  with pytest.raises(ValueError, match=r"config.model.dtype='fp8'; allowed: \['bfloat16', 'float32'\]"):
    precision.compute_dtype('fp8')
  assert precision.compute_dtype('bfloat16') == jnp.bfloat16
