"""Named architectures, `get_model`, and the adapter families a model can carry.

    model = get_model('viclip_b16', msta=MSTAConfig())     # architecture only: no weights
    params = add_adapters(model, backbone_params, rng)      # backbone weights + fresh adapter leaves
    extra = adapter_configs(config)                         # {'msta': MSTAConfig(...)} of a config / file
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from msta_jax.models import checkpoints
from msta_jax.models.adapters import MSTAConfig
from msta_jax.models.clip import CLIP, IMAGENET_MEAN, IMAGENET_STD, ModelConfig, TextConfig, VisionConfig
from msta_jax.models.config_base import AdapterConfig
from msta_jax.models.peft import AdaptFormerConfig, LoRAConfig

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

# Adapter families: get_model's keyword -> its config. Each is a section of the same name in a run's
# config (configs/base.py) and in the metadata of adapters.safetensors.
ADAPTERS: dict[str, type[AdapterConfig]] = {
    'msta': MSTAConfig,
    'lora': LoRAConfig,
    'adaptformer': AdaptFormerConfig,
}


def adapter_configs(sections: Mapping[str, Any]) -> dict[str, AdapterConfig]:
  """The enabled adapter configs of `sections` (a run's ConfigDict, or an adapters file's metadata):
  {'msta': MSTAConfig(...), ...}, ready for `get_model(**...)`.

  A section is None (absent) or the fields of its config plus `enabled` (the switch the config files
  carry; adapters files written before this translation carry it too); `enabled=False` leaves the family out. Any other
  unknown key raises (DictConfig.from_dict), and each config validates itself on construction.
  """
  out = {}
  for name, cls in ADAPTERS.items():
    section = sections.get(name)
    if section is None:
      continue
    fields = dict(section)
    if fields.pop('enabled', True):
      out[name] = cls.from_dict(fields)
  return out


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
  """Zeros that initialise every parameter: videos [B, T, H, W, 3] (T = 1 frame-wise), ids [B, L]."""
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
  shapes = traverse_util.flatten_dict(param_shapes(model), sep='/')
  have = traverse_util.flatten_dict(backbone_params, sep='/')
  new = sorted(k for k in shapes if k not in have)
  expected = traverse_util.unflatten_dict({k: v for k, v in shapes.items() if k not in new}, sep='/')
  checkpoints.check_flat(have, expected, 'backbone parameters')
  # Under jit, XLA drops the unused random init of the backbone: only the new leaves are computed.
  fresh = jax.jit(lambda r: {k: v for k, v in traverse_util.flatten_dict(init_params(model, r), sep='/').items()
                             if k in set(new)})(rng)
  return traverse_util.unflatten_dict({**have, **fresh}, sep='/')
