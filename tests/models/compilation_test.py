"""Forward-pass compiler options: on CPU they move every dot off YNNPACK and keep the values."""
import re

import jax
import numpy as np

from msta_jax import compilation, models


def _ynn_dots(hlo: str) -> int:
  """YNNPACK fusions whose op is a dot_general (the fusion's metadata names the traced op)."""
  return len(re.findall(r'kind=kCustom[^\n]*op_name="[^"]*dot_general"[^\n]*__ynn_fusion', hlo))


def test_cpu_forward_options_use_eigen_dots_with_equal_values():
  assert jax.default_backend() == 'cpu'  # The suite runs on CPU (launch/test.sh).
  model = models.get_model(models.get_config('tiny_clip'))
  params = models.init_params(model, jax.random.PRNGKey(0))
  size = model.cfg.vision.image_size
  images = np.random.default_rng(0).standard_normal((3, size, size, 3)).astype(np.float32)
  fn = jax.jit(lambda p, x: model.apply({'params': p}, x, method=model.encode_image))
  lowered = fn.lower(params, images)
  default = lowered.compile()
  tuned = lowered.compile(compiler_options=compilation.forward_options())
  assert _ynn_dots(default.as_text()) > 0  # jaxlib's default: dots in YNNPACK (else the option is moot).
  assert _ynn_dots(tuned.as_text()) == 0
  np.testing.assert_allclose(tuned(params, images), default(params, images), rtol=1e-5, atol=1e-5)
