"""Speed paths of the transformer: heads-major attention (CPU) against jax.nn.dot_product_attention,
values and gradients; the last block computed for token 0 alone against the full output."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax.models import transformer as tfm


def _qkv(dtype, b=2, l=7, n=3, h=16):
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  return [(3 * jax.random.normal(k, (b, l, n, h))).astype(dtype) for k in keys]


@pytest.mark.parametrize('causal', [False, True])
def test_heads_major_matches_dot_product_attention(causal):
  q, k, v = _qkv(jnp.float32)
  ours = tfm.heads_major_attention(q, k, v, causal=causal)
  ref = jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation='xla')
  assert ours.shape == ref.shape == q.shape
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('causal', [False, True])
def test_heads_major_gradients_match(causal):
  q, k, v = _qkv(jnp.float32)
  w = jax.random.normal(jax.random.PRNGKey(1), q.shape)

  def loss(fn):
    return lambda *a: jnp.sum(w * fn(*a))

  ours = jax.grad(loss(lambda *a: tfm.heads_major_attention(*a, causal=causal)), argnums=(0, 1, 2))(q, k, v)
  ref = jax.grad(loss(lambda *a: jax.nn.dot_product_attention(*a, is_causal=causal, implementation='xla')),
                 argnums=(0, 1, 2))(q, k, v)
  for o, r in zip(ours, ref):
    np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


def test_heads_major_bf16_keeps_dtype_and_stays_close():
  q, k, v = _qkv(jnp.bfloat16)
  ours = tfm.heads_major_attention(q, k, v, causal=True)
  ref = jax.nn.dot_product_attention(*(t.astype(jnp.float32) for t in (q, k, v)), is_causal=True)
  assert ours.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(ours, np.float32), ref, atol=0.05)


def test_attention_dispatches_on_backend():
  q, k, v = _qkv(jnp.float32)
  jaxpr = lambda fn: str(jax.make_jaxpr(lambda *a: fn(*a, causal=True))(q, k, v))
  assert jax.default_backend() == 'cpu'  # The suite runs on CPU (launch/test.sh).
  assert jaxpr(tfm.attention) == jaxpr(tfm.heads_major_attention)


class _Scale(nn.Module):
  """A stand-in adapter: a per-token residual from the block input."""

  @nn.compact
  def __call__(self, x, *, train):
    return x * self.param('s', nn.initializers.constant(0.5), (x.shape[-1],))


@pytest.mark.parametrize('with_adapter', [False, True])
def test_first_token_only_is_token_zero_of_the_full_output(with_adapter):
  net = tfm.Transformer(layers=2, heads=2, mlp_dim=32)
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 16))
  factory = (lambda i: _Scale(name=f'adapter_{i}')) if with_adapter else None
  params = net.init(jax.random.PRNGKey(1), x, adapters=factory)
  full = net.apply(params, x, adapters=factory)
  first = net.apply(params, x, adapters=factory, first_token_only=True)
  assert first.shape == (3, 1, 16)
  np.testing.assert_allclose(first, full[:, :1], rtol=1e-5, atol=1e-6)


def test_first_token_only_refuses_causal_attention():
  net = tfm.Transformer(layers=1, heads=2, mlp_dim=32, causal=True)
  x = jnp.ones((1, 4, 16))
  with pytest.raises(ValueError, match='bidirectional'):
    net.init(jax.random.PRNGKey(0), x, first_token_only=True)
