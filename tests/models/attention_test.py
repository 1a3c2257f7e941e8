"""models/attention.py: which implementation each (platform, dtype) gets, and every implementation that
runs here (the splash kernel in Pallas interpret mode) against the XLA reference, values and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax.models import attention as A


HAS_SPLASH = A._splash_module() is not None  # jax 0.10 ships it; later releases may move it out.
TPU = 'splash' if HAS_SPLASH else 'xla'


def _qkv(dtype, b=2, l=7, n=3, h=16):
  keys = jax.random.split(jax.random.PRNGKey(0), 3)
  return [(3 * jax.random.normal(k, (b, l, n, h))).astype(dtype) for k in keys]


@pytest.mark.parametrize('platform, dtype, head_dim, expected', [
    ('cpu', jnp.float32, 64, 'heads_major'),
    ('cpu', jnp.bfloat16, 64, 'heads_major'),
    ('gpu', jnp.bfloat16, 64, 'cudnn'),
    ('gpu', jnp.bfloat16, 128, 'cudnn'),
    ('gpu', jnp.bfloat16, 256, 'xla'),    # cuDNN's fused kernel takes head sizes up to 128.
    ('gpu', jnp.bfloat16, 36, 'xla'),     # ... in multiples of 8.
    ('gpu', jnp.float32, 64, 'xla'),      # No fused float32 kernel: XLA materialises the logits.
    ('tpu', jnp.bfloat16, 64, TPU),
    ('tpu', jnp.float32, 64, TPU),
    ('rocm', jnp.bfloat16, 64, 'xla'),
])
def test_each_platform_and_dtype_gets_its_implementation(platform, dtype, head_dim, expected):
  assert A.select(platform, dtype, head_dim) == expected


def test_tpu_falls_back_to_xla_without_the_splash_kernel(monkeypatch):
  monkeypatch.setattr(A, '_splash_module', lambda: None)
  assert A.select('tpu', jnp.bfloat16, 64) == 'xla'


def test_attention_runs_the_selected_implementation_on_this_backend():
  q, k, v = _qkv(jnp.float32)
  jaxpr = lambda fn: str(jax.make_jaxpr(lambda *a: fn(*a, causal=True))(q, k, v))
  impl = A.select(jax.default_backend(), q.dtype, q.shape[-1])
  assert jaxpr(A.attention) == jaxpr(A.IMPLEMENTATIONS[impl])


def _splash(q, k, v, *, causal):
  if not HAS_SPLASH:
    pytest.skip(f'jax {jax.__version__} ships no Pallas splash-attention kernel')
  return A.splash_attention(q, k, v, causal=causal, interpret=True)


# Every implementation runnable on a CPU; cudnn needs an NVIDIA GPU (cuDNN >= 8.9) and is not here.
RUNNABLE = {'heads_major': A.heads_major_attention, 'splash': _splash}


@pytest.mark.parametrize('name', sorted(RUNNABLE))
@pytest.mark.parametrize('causal', [False, True])
def test_values_and_gradients_match_the_xla_path(name, causal):
  q, k, v = _qkv(jnp.float32, l=130 if name == 'splash' else 7)  # splash: past one block of 128.
  w = jax.random.normal(jax.random.PRNGKey(1), q.shape)

  def grads(fn):
    return jax.value_and_grad(lambda *a: jnp.sum(w * fn(*a, causal=causal)), argnums=(0, 1, 2))(q, k, v)

  ours, ref = RUNNABLE[name](q, k, v, causal=causal), A.xla_attention(q, k, v, causal=causal)
  assert ours.shape == ref.shape == q.shape and ours.dtype == ref.dtype
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)  # Blockwise softmax: other rounding.
  for o, r in zip(grads(RUNNABLE[name])[1], grads(A.xla_attention)[1]):
    np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', sorted(RUNNABLE))
def test_bf16_keeps_dtype_and_stays_close(name):
  q, k, v = _qkv(jnp.bfloat16)
  ours = RUNNABLE[name](q, k, v, causal=True)
  ref = A.xla_attention(*(t.astype(jnp.float32) for t in (q, k, v)), causal=True)
  assert ours.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(ours, np.float32), ref, atol=0.05)
