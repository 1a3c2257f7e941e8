"""Models: CLIP/ViCLIP towers, adapters, tokenizer and checkpoint formats. Knows nothing of data.

    from msta_jax import models
    model, params = models.load('/path/to/checkpoint')      # HF dir, msta_jax dir, OpenAI .pt, ViCLIP .pth
    model = models.get_model('viclip_b16')                  # architecture only (random init / shapes)
    ids, mask = models.Tokenizer(model.cfg.text.context_length)(['a video of archery.'])
    emb = model.apply({'params': params}, ids, method=model.encode_text)   # [1, 512], un-normalised
"""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault('USE_TF', '0')  # transformers must not pull TensorFlow into the model path.

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from msta_jax.models.adapters import MSTAConfig  # noqa: E402
from msta_jax.models.peft import AdaptFormerConfig, LoRAConfig  # noqa: E402
from msta_jax.models.clip import (CLIP, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,  # noqa: E402
                                  ModelConfig, TextConfig, VisionConfig)
from msta_jax.models.tokenizer import Tokenizer  # noqa: E402

_B16_VISION = VisionConfig(width=768, layers=12, heads=12, mlp_dim=3072, patch_size=16, image_size=224)
_L14_VISION = VisionConfig(width=1024, layers=24, heads=16, mlp_dim=4096, patch_size=14, image_size=224)
_B_TEXT = TextConfig(width=512, layers=12, heads=8, mlp_dim=2048)
_L_TEXT = TextConfig(width=768, layers=12, heads=12, mlp_dim=3072)

# Named architectures. ViCLIP: joint space-time video, 32-token text context, ImageNet mean/std.
CONFIGS: dict[str, ModelConfig] = {
    'clip_b16': ModelConfig(vision=_B16_VISION, text=_B_TEXT, embed_dim=512),
    'clip_b32': ModelConfig(vision=dataclasses.replace(_B16_VISION, patch_size=32), text=_B_TEXT,
                            embed_dim=512),
    'clip_l14': ModelConfig(vision=_L14_VISION, text=_L_TEXT, embed_dim=768),
    'viclip_b16': ModelConfig(vision=_B16_VISION, text=dataclasses.replace(_B_TEXT, context_length=32),
                              embed_dim=512, video_mode='joint', mean=IMAGENET_MEAN, std=IMAGENET_STD),
    'viclip_l14': ModelConfig(vision=_L14_VISION, text=dataclasses.replace(_L_TEXT, context_length=32),
                              embed_dim=768, video_mode='joint', mean=IMAGENET_MEAN, std=IMAGENET_STD),
    # Small sizes for tests and the synthetic demo (real CLIP vocabulary, so the tokenizer applies).
    'tiny_clip': ModelConfig(
        vision=VisionConfig(width=64, layers=2, heads=2, mlp_dim=256, patch_size=8, image_size=32,
                            num_frames=8),
        text=TextConfig(width=64, layers=2, heads=2, mlp_dim=256, context_length=16), embed_dim=64),
    'tiny_viclip': ModelConfig(
        vision=VisionConfig(width=64, layers=2, heads=2, mlp_dim=256, patch_size=8, image_size=32,
                            num_frames=8),
        text=TextConfig(width=64, layers=2, heads=2, mlp_dim=256, context_length=16), embed_dim=64,
        video_mode='joint', mean=IMAGENET_MEAN, std=IMAGENET_STD),
}


def get_config(name: str) -> ModelConfig:
  if name not in CONFIGS:
    raise KeyError(f'unknown model {name!r}; known: {sorted(CONFIGS)}')
  return CONFIGS[name]


def get_model(name_or_cfg: str | ModelConfig, *, dtype=jnp.float32, remat: bool = False,
              msta: MSTAConfig | None = None, lora: LoRAConfig | None = None,
              adaptformer: AdaptFormerConfig | None = None) -> CLIP:
  """A CLIP module for a named architecture or a ModelConfig (no weights); `msta`, `lora` and
  `adaptformer` add the parameter-efficient modules of models/adapters.py and models/peft.py."""
  cfg = get_config(name_or_cfg) if isinstance(name_or_cfg, str) else name_or_cfg
  return CLIP(cfg, dtype=dtype, remat=remat, msta=msta, lora=lora, adaptformer=adaptformer)


def dummy_inputs(cfg: ModelConfig, batch: int = 1) -> tuple[jax.Array, jax.Array]:
  v = cfg.vision
  frames = v.num_frames if cfg.video_mode == 'joint' else 1
  return (jnp.zeros((batch, frames, v.image_size, v.image_size, 3), jnp.float32),
          jnp.zeros((batch, cfg.text.context_length), jnp.int32))


def init_params(model: CLIP, rng: jax.Array) -> dict:
  """Random parameters (tests, from-scratch pre-training)."""
  return model.init(rng, *dummy_inputs(model.cfg))['params']


def param_shapes(model: CLIP) -> dict:
  """Abstract parameter tree (ShapeDtypeStructs): no memory, no compute."""
  return jax.eval_shape(lambda: init_params(model, jax.random.PRNGKey(0)))


def add_adapters(model: CLIP, backbone_params: dict, rng: jax.Array) -> dict:
  """Backbone parameters plus freshly initialised new parameters (MSTA's `msta/...`, LoRA's and
  AdaptFormer's leaves inside the blocks) of an adapted `model`.

  The backbone tree must be exactly the model's minus the new leaves (strict, like loading).
  """
  from flax import traverse_util
  from msta_jax.models import checkpoints
  shapes = traverse_util.flatten_dict(param_shapes(model), sep='/')
  have = traverse_util.flatten_dict(backbone_params, sep='/')
  new = sorted(k for k in shapes if k not in have)
  expected = traverse_util.unflatten_dict({k: v for k, v in shapes.items() if k not in new}, sep='/')
  checkpoints.check_flat(have, expected, 'backbone parameters')
  # Under jit, XLA drops the unused random init of the backbone: only the new leaves are computed.
  fresh = jax.jit(lambda r: {k: v for k, v in traverse_util.flatten_dict(init_params(model, r), sep='/').items()
                             if k in set(new)})(rng)
  return traverse_util.unflatten_dict({**have, **fresh}, sep='/')


from msta_jax.models.loading import load, save  # noqa: E402,F401
