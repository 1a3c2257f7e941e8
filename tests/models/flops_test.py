"""models/flops.py against XLA's cost analysis of the same forward (CPU: attention is plain einsums,
all counted), and the train-step rules."""
import jax
import jax.numpy as jnp
import pytest

from msta_jax import compilation, models
from msta_jax.models import adapters, flops


@pytest.mark.parametrize('name', ['tiny_viclip', 'tiny_clip'])
def test_forward_matches_xla_count_less_the_elementwise_work(name):
  """XLA also counts normalisation, activations and softmax (~8% at width 64); the matmuls are ours."""
  cfg = models.get_config(name)
  model = models.get_model(cfg)
  params = jax.eval_shape(lambda: models.init_params(model, jax.random.PRNGKey(0)))
  v = cfg.vision
  videos = jax.ShapeDtypeStruct((4, v.num_frames, v.image_size, v.image_size, 3), jnp.float32)
  ids = jax.ShapeDtypeStruct((5, cfg.text.context_length), jnp.int32)
  fn = jax.jit(lambda p, x, t: (model.apply({'params': p}, x, method=model.encode_video),
                                model.apply({'params': p}, t, method=model.encode_text)))
  xla = compilation.flops(fn.lower(params, videos, ids).compile())
  ours = flops.video_forward(cfg, 4) + flops.text_forward(cfg, 5)
  assert 0.88 * xla < ours < xla


def test_step_rules_on_viclip_b16():
  cfg = models.get_config('viclip_b16')
  full = flops.classification_step(cfg, 32, 174, None)
  msta = flops.classification_step(cfg, 32, 174, adapters.MSTAConfig())  # Blocks 8..12.
  assert full['step'] == 3 * full['forward']
  per_block = flops.block(1569, 768, 3072)  # One joint block of 8 frames x 196 patches + CLS.
  assert per_block == pytest.approx(29.8e9, rel=0.01)
  # Forward + adapters x3 + the video blocks 9..12 (the last one CLS-only) and text blocks 9..12 once more.
  backward_blocks = 32 * (3 * per_block + flops.cls_block(1569, 768, 3072)) + 174 * 4 * flops.block(32, 512, 2048)
  heads = 2 * 32 * 768 * 512 + 2 * 174 * 512 * 512
  adapters_fwd = msta['forward'] - full['forward']
  assert msta['step'] == pytest.approx(full['forward'] + 3 * adapters_fwd + backward_blocks + heads, rel=1e-9)
  assert msta['step'] / 32 == pytest.approx(0.455e12, rel=0.01)  # TFLOP per clip, 174 class prompts.
