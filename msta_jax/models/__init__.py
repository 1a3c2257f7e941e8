"""Models: CLIP/ViCLIP towers, adapters, tokenizer and checkpoint formats. Knows nothing of data.

    from msta_jax import models
    model, params = models.load('/path/to/checkpoint')      # HF dir, msta_jax dir, OpenAI .pt, ViCLIP .pth
    model = models.get_model('viclip_b16')                  # architecture only (random init / shapes)
    ids, mask = models.Tokenizer(model.cfg.text.context_length)(['a video of archery.'])
    emb = model.apply({'params': params}, ids, method=model.encode_text)   # [1, 512], un-normalised

This file only re-exports: the registry of architectures and adapters is models/registry.py, loading
and saving models/loading.py.
"""
from msta_jax.models.adapters import MSTAConfig
from msta_jax.models.clip import CLIP
from msta_jax.models.clip import CLIP_MEAN
from msta_jax.models.clip import CLIP_STD
from msta_jax.models.clip import IMAGENET_MEAN
from msta_jax.models.clip import IMAGENET_STD
from msta_jax.models.clip import ModelConfig
from msta_jax.models.clip import TextConfig
from msta_jax.models.clip import VisionConfig
from msta_jax.models.loading import load
from msta_jax.models.loading import save
from msta_jax.models.peft import AdaptFormerConfig
from msta_jax.models.peft import LoRAConfig
from msta_jax.models.registry import ADAPTERS
from msta_jax.models.registry import CONFIGS
from msta_jax.models.registry import add_adapters
from msta_jax.models.registry import adapter_configs
from msta_jax.models.registry import dummy_inputs
from msta_jax.models.registry import get_config
from msta_jax.models.registry import get_model
from msta_jax.models.registry import init_params
from msta_jax.models.registry import param_shapes
from msta_jax.models.tokenizer import Tokenizer
