"""MSTA adapters: exact parameter counts, ablation switches, sharing, temporal conv maths."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax import models
from msta_jax.models import adapters as A

SDS = jax.ShapeDtypeStruct


def _count(name, msta):
  shapes = models.param_shapes(models.get_model(name, msta=msta))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes.get('msta', {})))


def test_logged_counts_on_viclip_b16():
  assert _count('viclip_b16', A.MSTAConfig()) == 5 * 348_800 == 1_744_000
  assert _count('viclip_b16', A.MSTAConfig(bottleneck=256, first_block=1, last_block=12)) == 8_712_192
  assert _count('clip_b16', A.MSTAConfig()) == 1_744_000  # Same widths, frame-wise backbone.


def test_ablation_counts():
  d, v, t = 128, 768, 512
  down_v, down_t, mid = v * d + d, t * d + d, d * d + d
  up_v, up_t, conv = d * v + v, d * t + t, 3 * v + v
  assert _count('viclip_b16', A.MSTAConfig(video=False)) == 5 * (down_t + mid + up_t)        # language-only
  assert _count('viclip_b16', A.MSTAConfig(text=False)) == 5 * (down_v + mid + up_v + conv)  # vision-only
  assert _count('viclip_b16', A.MSTAConfig(shared=False)) == 5 * (348_800 + mid)             # own middles
  assert _count('viclip_b16', A.MSTAConfig(temporal_conv=False)) == 5 * (348_800 - conv)
  assert _count('viclip_b16', A.MSTAConfig(first_block=12)) == 348_800


def test_invalid_settings_are_rejected():
  with pytest.raises(ValueError, match='must lie in 1..12'):
    _count('viclip_b16', A.MSTAConfig(first_block=0))
  with pytest.raises(ValueError, match='cls_mode'):
    A.MSTAConfig(cls_mode='first').validate()
  with pytest.raises(ValueError, match='nothing to adapt'):
    A.MSTAConfig(video=False, text=False).validate()


@pytest.fixture(scope='module')
def tiny():
  backbone = models.get_model('tiny_viclip')
  params = jax.jit(lambda r: models.init_params(backbone, r))(jax.random.PRNGKey(0))
  rng = np.random.RandomState(0)
  video = jnp.asarray(rng.randn(2, 8, 32, 32, 3).astype(np.float32))
  ids, _ = models.Tokenizer(16)(['a video of juggling.', 'someone opens a door'])
  return backbone, params, video, jnp.asarray(ids)


@pytest.mark.parametrize('name', ['tiny_viclip', 'tiny_clip'])
def test_zero_up_init_is_the_backbone_bit_for_bit(tiny, name):
  _, _, video, ids = tiny
  backbone = models.get_model(name)
  params = models.init_params(backbone, jax.random.PRNGKey(1))
  adapted = models.get_model(name, msta=A.MSTAConfig(first_block=1, last_block=2, bottleneck=8))
  full = models.add_adapters(adapted, params, jax.random.PRNGKey(2))
  for method in ('encode_video', 'encode_text'):
    x = video if method == 'encode_video' else ids
    a = jax.jit(lambda p, x: adapted.apply({'params': p}, x, method=getattr(adapted, method)))(full, x)
    b = jax.jit(lambda p, x: backbone.apply({'params': p}, x, method=getattr(backbone, method)))(params, x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_shared_layer_is_one_parameter_with_gradient_from_both_towers(tiny):
  backbone, params, video, ids = tiny
  model = models.get_model('tiny_viclip', msta=A.MSTAConfig(first_block=2, last_block=2, bottleneck=8,
                                                             up_init='kaiming'))
  full = models.add_adapters(model, params, jax.random.PRNGKey(3))
  assert set(full['msta']) == {'shared_1', 'video_1', 'text_1'}
  assert 'middle' not in full['msta']['video_1'] and 'middle' not in full['msta']['text_1']

  def grad_of(method, x):
    f = lambda p: jnp.sum(model.apply({'params': p}, x, method=getattr(model, method)) ** 2)
    return jax.jit(jax.grad(f))(full)['msta']['shared_1']['kernel']

  g_video, g_text = grad_of('encode_video', video), grad_of('encode_text', ids)
  assert float(jnp.abs(g_video).sum()) > 0 and float(jnp.abs(g_text).sum()) > 0


def test_temporal_mix_joint_layout_by_hand():
  """Patch-major tokens [CLS, (n0,t0), (n0,t1), ...]: the conv runs along t for each patch n."""
  cfg = A.MSTAConfig(conv_init='diff')
  b, p, t, d = 1, 2, 4, 3
  src = np.random.RandomState(0).randn(b, 1 + p * t, d).astype(np.float32)
  mix = A.TemporalMix(cfg)
  params = mix.init(jax.random.PRNGKey(0), src, frames=t, joint=True)
  out = np.asarray(mix.apply(params, src, frames=t, joint=True))
  patches = src[0, 1:].reshape(p, t, d)
  padded = np.pad(patches, ((0, 0), (1, 1), (0, 0)))
  want = -0.5 * padded[:, :-2] + patches + 0.5 * padded[:, 2:]  # kernel [-0.5, 1, 0.5], zero padded.
  np.testing.assert_allclose(out[0, 1:].reshape(p, t, d), want, atol=1e-6)
  np.testing.assert_allclose(out[0, 0], want.reshape(-1, d).mean(0), atol=1e-6)  # CLS: patch mean.


def test_temporal_mix_framewise_layout_by_hand():
  cfg = A.MSTAConfig(conv_init='identity', cls_mode='conv')
  b, t, n, d = 2, 3, 1 + 2, 4
  src = np.random.RandomState(1).randn(b * t, n, d).astype(np.float32)
  mix = A.TemporalMix(cfg)
  params = mix.init(jax.random.PRNGKey(0), src, frames=t, joint=False)
  kernel = np.random.RandomState(2).randn(3, 1, d).astype(np.float32)
  params = {'params': {'conv': {'kernel': kernel, 'bias': np.zeros(d, np.float32)}}}
  out = np.asarray(mix.apply(params, src, frames=t, joint=False)).reshape(b, t, n, d)
  x = src.reshape(b, t, n, d)
  padded = np.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
  want = sum(kernel[k, 0] * padded[:, k:k + t] for k in range(3))  # Every position, CLS included.
  np.testing.assert_allclose(out, want, atol=1e-5)


def test_frame_order_matters_only_through_the_temporal_conv():
  """Frame-wise CLIP averages frames: only the adapter's temporal conv can see their order."""
  backbone = models.get_model('tiny_clip')
  params = models.init_params(backbone, jax.random.PRNGKey(4))
  video = jnp.asarray(np.random.RandomState(5).randn(2, 8, 32, 32, 3).astype(np.float32))
  outs = {}
  for conv in (True, False):
    cfg = A.MSTAConfig(first_block=1, last_block=2, bottleneck=8, up_init='kaiming', temporal_conv=conv,
                       scale=0.5)
    model = models.get_model('tiny_clip', msta=cfg)
    full = models.add_adapters(model, params, jax.random.PRNGKey(6))
    encode = jax.jit(lambda p, v: model.apply({'params': p}, v, method=model.encode_video))
    fwd, rev = encode(full, video), encode(full, video[:, ::-1])
    outs[conv] = float(jnp.abs(fwd - rev).max())
  assert outs[False] < 1e-5 < 1e-3 < outs[True]


def test_conv_on_input_variant_has_the_same_count():
  cfg = A.MSTAConfig(conv_input='input')
  assert _count('viclip_b16', cfg) == _count('viclip_b16', dataclasses.replace(cfg, conv_input='up'))


def test_depthwise_temporal_conv_equals_flax_depthwise_conv():
  """The shifted-sum conv has nn.Conv's parameters and values (depthwise, 'SAME'), gradients included."""
  d, k, t = 6, 3, 8
  x = jax.random.normal(jax.random.PRNGKey(0), (5, t, d))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (k, 1, d))
  bias = jax.random.normal(jax.random.PRNGKey(2), (d,))
  params = {'params': {'kernel': kernel, 'bias': bias}}
  ours = A.DepthwiseTemporalConv(d, k, nn.initializers.zeros)
  ref = nn.Conv(d, (k,), padding='SAME', feature_group_count=d)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(3), x)) == \
      jax.tree.map(jnp.shape, ref.init(jax.random.PRNGKey(3), x))
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-6, atol=1e-6)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))  # noqa: E731
  g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
