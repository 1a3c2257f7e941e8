"""CLIP and ViCLIP in Flax Linen: one ViT, one text transformer, two ways to see a video.

Through the models package (msta_jax.models):

    model, params = models.load('/path/to/hf_clip_dir')           # or models.get_model('clip_b16')
    v = model.apply({'params': params}, videos, method=model.encode_video)   # [B, T, H, W, 3] -> [B, E]
    t = model.apply({'params': params}, ids, method=model.encode_text)       # int32 [B, L] -> [B, E]

`video_mode` decides how a video is encoded:
- 'frame_average' (OpenAI CLIP, ViFi-CLIP): every frame through the ViT alone, projected features
  averaged over time.
- 'joint' (ViCLIP): one sequence of CLS + all patches of all frames with a temporal embedding on the
  patch tokens, in ViCLIP's patch-major order (sequence index 1 + n*T + t), attended jointly.
Every encode_* returns projected, un-normalised float32 embeddings (what HF `get_image_features`
returns), whatever the compute dtype: models/precision.py has the mixed-precision policy.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from msta_jax.models import adapters as msta_lib
from msta_jax.models import precision
from msta_jax.models import transformer as tfm
from msta_jax.models.config_base import DictConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class VisionConfig(DictConfig):
  width: int = 768
  layers: int = 12
  heads: int = 12
  mlp_dim: int = 3072
  patch_size: int = 16
  image_size: int = 224
  num_frames: int = 8  # Length of the temporal embedding (joint mode only).


@dataclasses.dataclass(frozen=True)
class TextConfig(DictConfig):
  width: int = 512
  layers: int = 12
  heads: int = 8
  mlp_dim: int = 2048
  vocab_size: int = 49408
  context_length: int = 77
  eot_id: int = 49407  # Pooling takes the FIRST position holding this id.


@dataclasses.dataclass(frozen=True)
class ModelConfig(DictConfig):
  """Architecture of a two-tower video-text model; everything a checkpoint needs to be rebuilt."""
  vision: VisionConfig = VisionConfig()
  text: TextConfig = TextConfig()
  embed_dim: int = 512
  video_mode: str = 'frame_average'  # 'frame_average' (CLIP) or 'joint' (ViCLIP).
  activation: str = 'quick_gelu'
  ln_eps: float = 1e-5
  drop_path: float = 0.0  # Vision tower stochastic depth (max rate); ViCLIP pre-training used 0.1.
  mean: tuple[float, float, float] = CLIP_MEAN
  std: tuple[float, float, float] = CLIP_STD

  def replace(self, **kw) -> 'ModelConfig':
    return dataclasses.replace(self, **kw)


class VisionTransformer(nn.Module):
  """CLIP ViT over images ([N, H, W, 3] -> [N, E]) or ViCLIP's joint video ViT ([B, T, H, W, 3])."""
  cfg: ModelConfig
  dtype: Any = jnp.float32
  remat: bool = False
  lora: Any = None         # models/peft.py configs, applied inside the blocks they name.
  adaptformer: Any = None

  def setup(self):
    v = self.cfg.vision
    self.conv1 = nn.Conv(v.width, (v.patch_size, v.patch_size), strides=v.patch_size, padding='VALID',
                         use_bias=False, dtype=self.dtype)
    scale = v.width ** -0.5
    grid = v.image_size // v.patch_size
    self.class_embedding = self.param('class_embedding', nn.initializers.normal(scale), (v.width,))
    self.positional_embedding = self.param('positional_embedding', nn.initializers.normal(scale),
                                           (grid * grid + 1, v.width))
    if self.cfg.video_mode == 'joint':
      self.temporal_positional_embedding = self.param(
          'temporal_positional_embedding', nn.initializers.zeros, (v.num_frames, v.width))
    self.ln_pre = tfm.LayerNorm(self.cfg.ln_eps)
    self.transformer = tfm.Transformer(v.layers, v.heads, v.mlp_dim, self.cfg.activation, causal=False,
                                       drop_path=self.cfg.drop_path, ln_eps=self.cfg.ln_eps,
                                       remat=self.remat, dtype=self.dtype, lora=self.lora,
                                       adaptformer=self.adaptformer)
    self.ln_post = tfm.LayerNorm(self.cfg.ln_eps)
    self.proj = self.param('proj', nn.initializers.normal(scale), (v.width, self.cfg.embed_dim))

  def patchify(self, images: jax.Array) -> jax.Array:
    """[N, H, W, 3] -> patch tokens with spatial position [N, P, D] (P = grid*grid, row-major)."""
    v = self.cfg.vision
    if images.shape[1:] != (v.image_size, v.image_size, 3):
      raise ValueError(f'expected images [N, {v.image_size}, {v.image_size}, 3], got {images.shape}; '
                       'resize the input or load the model with image_size=...')
    x = precision.to_stream(self.conv1(images.astype(self.dtype)))
    x = x.reshape(x.shape[0], -1, v.width)
    return x + self.positional_embedding[1:].astype(x.dtype)

  def cls_token(self, n: int) -> jax.Array:
    cls = precision.to_stream(self.class_embedding + self.positional_embedding[0])
    return jnp.broadcast_to(cls, (n, 1, cls.shape[-1]))

  def head(self, x: jax.Array) -> jax.Array:
    """ln_post on the CLS token, then the projection. [N, L, D] -> [N, E] float32."""
    return precision.matmul(self.ln_post(x[:, 0]), self.proj, self.dtype)

  def __call__(self, images: jax.Array, *, train: bool = False, adapters=None) -> jax.Array:
    """Images [N, H, W, 3] -> [N, E], each image alone."""
    x = self.patchify(images)
    x = jnp.concatenate([self.cls_token(x.shape[0]), x], axis=1)
    x = self.transformer(self.ln_pre(x), train=train, adapters=adapters, first_token_only=True)
    return self.head(x)

  def joint_tokens(self, videos: jax.Array) -> jax.Array:
    """[B, T, H, W, 3] -> ViCLIP's joint sequence [B, 1 + P*T, D] in patch-major order."""
    b, t = videos.shape[:2]
    x = self.patchify(videos.reshape((b * t,) + videos.shape[2:]))
    x = x.reshape(b, t, x.shape[1], x.shape[2])  # [B, T, P, D]
    temporal = self.temporal_positional_embedding
    if t == 1:
      temporal = temporal.mean(0, keepdims=True)  # ViCLIP's one-frame rule.
    elif t != temporal.shape[0]:
      raise ValueError(f'video has {t} frames but the temporal embedding has {temporal.shape[0]}; '
                       f'load the model with num_frames={t} to resize it')
    x = x + temporal[None, :, None, :].astype(x.dtype)
    x = jnp.swapaxes(x, 1, 2).reshape(b, -1, x.shape[-1])  # [B, P*T, D], index n*T + t.
    return jnp.concatenate([self.cls_token(b), x], axis=1)

  def encode_joint(self, videos: jax.Array, *, train: bool = False, adapters=None) -> jax.Array:
    x = self.transformer(self.ln_pre(self.joint_tokens(videos)), train=train, adapters=adapters,
                         first_token_only=True)
    return self.head(x)


class TextTransformer(nn.Module):
  """Causal CLIP text transformer pooled at the first EOT token. int32 [B, L] -> [B, E]."""
  cfg: ModelConfig
  dtype: Any = jnp.float32
  remat: bool = False
  lora: Any = None
  adaptformer: Any = None

  def setup(self):
    t = self.cfg.text
    self.token_embedding = nn.Embed(t.vocab_size, t.width, embedding_init=nn.initializers.normal(0.02))
    self.positional_embedding = self.param('positional_embedding', nn.initializers.normal(0.01),
                                           (t.context_length, t.width))
    self.transformer = tfm.Transformer(t.layers, t.heads, t.mlp_dim, self.cfg.activation, causal=True,
                                       ln_eps=self.cfg.ln_eps, remat=self.remat, dtype=self.dtype, lora=self.lora,
                                       adaptformer=self.adaptformer)
    self.ln_final = tfm.LayerNorm(self.cfg.ln_eps)
    self.text_projection = self.param('text_projection', nn.initializers.normal(t.width ** -0.5),
                                      (t.width, self.cfg.embed_dim))

  def __call__(self, ids: jax.Array, *, train: bool = False, adapters=None) -> jax.Array:
    t = self.cfg.text
    if ids.ndim != 2 or ids.shape[1] != t.context_length:
      raise ValueError(f'expected token ids [B, {t.context_length}], got {ids.shape}; tokenize with '
                       f'Tokenizer(context_length={t.context_length})')
    x = precision.to_stream(self.token_embedding(ids)) + self.positional_embedding.astype(precision.RESIDUAL)
    x = self.ln_final(self.transformer(x, train=train, adapters=adapters))
    eot = jnp.argmax(ids == t.eot_id, axis=-1)  # First EOT; padding (0) is never pooled.
    pooled = jnp.take_along_axis(x, eot[:, None, None], axis=1)[:, 0]
    return precision.matmul(pooled, self.text_projection, self.dtype)


class CLIP(nn.Module):
  """Two-tower video-text model. Parameters: `visual/...`, `text/...`, `logit_scale` (log), and with
  adapters `msta/...` (models/adapters.py); `msta=None` is the plain backbone."""
  cfg: ModelConfig
  dtype: Any = jnp.float32  # Compute dtype; parameters, residual stream and outputs stay float32.
  remat: bool = False
  msta: msta_lib.MSTAConfig | None = None
  lora: Any = None          # peft.LoRAConfig: LoRA in both towers.
  adaptformer: Any = None   # peft.AdaptFormerConfig: AdaptFormer in both towers.

  def setup(self):
    self.visual = VisionTransformer(self.cfg, self.dtype, self.remat, self.lora, self.adaptformer)
    self.text = TextTransformer(self.cfg, self.dtype, self.remat, self.lora, self.adaptformer)
    self.logit_scale = self.param('logit_scale', nn.initializers.constant(jnp.log(100.0)), ())
    if self.msta is not None:
      self.adapters = msta_lib.MSTA(self.msta, self.cfg.vision.width, self.cfg.text.width,
                                    self.cfg.vision.layers, self.cfg.text.layers, self.dtype, name='msta')

  def _video_adapters(self, frames: int, joint: bool):
    return self.adapters.video_factory(frames, joint) if self.msta is not None else None

  def encode_image(self, images: jax.Array, *, train: bool = False) -> jax.Array:
    """Normalised float images [N, H, W, 3] -> [N, E]. A joint-mode model (ViCLIP) encodes an image as
    a one-frame video, so the mean temporal embedding is added (ViCLIP's one-frame rule)."""
    if self.cfg.video_mode == 'joint':
      return self.encode_video(images[:, None], train=train)
    return self.visual(images, train=train, adapters=self._video_adapters(1, joint=False))

  def encode_video(self, videos: jax.Array, *, train: bool = False) -> jax.Array:
    """Normalised float videos [B, T, H, W, 3] -> [B, E]."""
    if videos.ndim != 5:
      raise ValueError(f'expected videos [B, T, H, W, 3], got shape {videos.shape}')
    b, t = videos.shape[:2]
    if self.cfg.video_mode == 'joint':
      return self.visual.encode_joint(videos, train=train, adapters=self._video_adapters(t, joint=True))
    feats = self.visual(videos.reshape((b * t,) + videos.shape[2:]), train=train,
                        adapters=self._video_adapters(t, joint=False))
    return feats.reshape(b, t, -1).mean(axis=1)

  def encode_text(self, ids: jax.Array, *, train: bool = False) -> jax.Array:
    return self.text(ids, train=train,
                     adapters=self.adapters.text_factory() if self.msta is not None else None)

  def __call__(self, videos: jax.Array, ids: jax.Array, *, train: bool = False):
    """Both towers, for initialisation and contrastive training: ([B, E], [K, E], scale)."""
    return (self.encode_video(videos, train=train), self.encode_text(ids, train=train),
            jnp.exp(self.logit_scale))
