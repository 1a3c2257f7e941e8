"""Speed paths of the transformer: the last block computed for token 0 alone against the full output
(attention kernels: tests/models/attention_test.py)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax.models import transformer as tfm


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
