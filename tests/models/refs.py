"""Independent PyTorch references for parity tests: HF transformers CLIP built from random weights,
and the same weights re-laid out as ViCLIP (.pth) and OpenAI CLIP (TorchScript .pt) checkpoints."""
from __future__ import annotations

import collections
from typing import Optional

import numpy as np
import transformers

from tests.torch_or_skip import torch  # Skips the importing test module where torch is absent.

# Odd small sizes: widths differ between towers, 3 heads of 32, patch 8 on 40 px (5x5 grid).
SMALL_VISION = dict(hidden_size=96, intermediate_size=200, num_hidden_layers=2, num_attention_heads=3,
                    patch_size=8, image_size=40)
SMALL_TEXT = dict(hidden_size=64, intermediate_size=136, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=24)
# Heads of 64 (width / 64), as files without a config (OpenAI .pt, ViCLIP .pth) are read.
HEADS64_VISION = dict(hidden_size=128, intermediate_size=200, num_hidden_layers=2, num_attention_heads=2,
                      patch_size=8, image_size=40)
HEADS64_TEXT = dict(hidden_size=64, intermediate_size=136, num_hidden_layers=2, num_attention_heads=1,
                    max_position_embeddings=32)
B16_VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  patch_size=16, image_size=224)
B16_TEXT = dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                max_position_embeddings=77)


def hf_clip(vision: dict, text: dict, projection_dim: int, seed: int = 0) -> transformers.CLIPModel:
  """A random HF CLIPModel whose biases and LayerNorms are non-trivial (not 0 / 1)."""
  torch.manual_seed(seed)
  cfg = transformers.CLIPConfig(
      vision_config=dict(hidden_act='quick_gelu', **vision),
      text_config=dict(hidden_act='quick_gelu', vocab_size=49408, eos_token_id=49407, **text),
      projection_dim=projection_dim)
  model = transformers.CLIPModel(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if name.endswith('bias') or 'norm' in name:
        p.add_(0.1 * torch.randn_like(p))
    model.logit_scale.fill_(np.log(50.0))
  return model


def _projected(out) -> np.ndarray:
  """transformers 4's get_*_features return the projected features; 5's, outputs with them as pooler_output."""
  return getattr(out, 'pooler_output', out).numpy()


def image_features(model, images: np.ndarray) -> np.ndarray:
  """images NHWC float32 -> HF get_image_features."""
  with torch.no_grad():
    return _projected(model.get_image_features(pixel_values=torch.from_numpy(images).permute(0, 3, 1, 2)))


def text_features(model, ids: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return _projected(model.get_text_features(input_ids=torch.from_numpy(ids).long()))


def _blocks(layers, prefix: str, sd: dict) -> None:
  for i, layer in enumerate(layers):
    a = layer.self_attn
    p = f'{prefix}transformer.resblocks.{i}.'
    sd[p + 'attn.in_proj_weight'] = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
    sd[p + 'attn.in_proj_bias'] = torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias])
    sd[p + 'attn.out_proj.weight'], sd[p + 'attn.out_proj.bias'] = a.out_proj.weight, a.out_proj.bias
    for ours, theirs in (('ln_1', layer.layer_norm1), ('ln_2', layer.layer_norm2),
                         ('mlp.c_fc', layer.mlp.fc1), ('mlp.c_proj', layer.mlp.fc2)):
      sd[p + ours + '.weight'], sd[p + ours + '.bias'] = theirs.weight, theirs.bias


def openai_state_dict(model: transformers.CLIPModel) -> dict[str, torch.Tensor]:
  """HF weights in OpenAI CLIP's layout (packed in_proj, (in, out) projections, top-level text)."""
  v, t = model.vision_model, model.text_model
  sd = {
      'visual.conv1.weight': v.embeddings.patch_embedding.weight,
      'visual.class_embedding': v.embeddings.class_embedding,
      'visual.positional_embedding': v.embeddings.position_embedding.weight,
      'visual.ln_pre.weight': v.pre_layrnorm.weight, 'visual.ln_pre.bias': v.pre_layrnorm.bias,
      'visual.ln_post.weight': v.post_layernorm.weight, 'visual.ln_post.bias': v.post_layernorm.bias,
      'visual.proj': model.visual_projection.weight.T,
      'token_embedding.weight': t.embeddings.token_embedding.weight,
      'positional_embedding': t.embeddings.position_embedding.weight,
      'ln_final.weight': t.final_layer_norm.weight, 'ln_final.bias': t.final_layer_norm.bias,
      'text_projection': model.text_projection.weight.T,
      'logit_scale': model.logit_scale,
  }
  _blocks(v.encoder.layers, 'visual.', sd)
  _blocks(t.encoder.layers, '', sd)
  return {k: x.detach().clone().contiguous() for k, x in sd.items()}


def viclip_state_dict(model: transformers.CLIPModel, temporal: np.ndarray) -> dict[str, torch.Tensor]:
  """HF weights in ViCLIP's layout: prefixes, Conv3d kernel with a unit time axis, `temp`."""
  sd = {}
  for k, x in openai_state_dict(model).items():
    if k == 'logit_scale':
      sd['temp'] = (1.0 / x.exp()).reshape(())
    elif k.startswith('visual.'):
      sd['vision_encoder.' + k[len('visual.'):]] = x.unsqueeze(2) if k == 'visual.conv1.weight' else x
    else:
      sd['text_encoder.' + k] = x
  sd['vision_encoder.temporal_positional_embedding'] = torch.from_numpy(temporal[None].astype(np.float32))
  return sd


def joint_reference(model: transformers.CLIPModel, videos: np.ndarray, temporal: np.ndarray) -> np.ndarray:
  """ViCLIP's video forward built from HF's own CLIP layers: videos [B, T, H, W, 3] -> [B, E]."""
  v = model.vision_model
  b, t = videos.shape[:2]
  with torch.no_grad():
    x = torch.from_numpy(videos.reshape((b * t,) + videos.shape[2:])).permute(0, 3, 1, 2)
    patches = v.embeddings.patch_embedding(x).flatten(2).transpose(1, 2)  # [B*T, P, D]
    pos = v.embeddings.position_embedding.weight
    patches = patches + pos[1:]
    patches = patches.reshape(b, t, -1, patches.shape[-1]) + torch.from_numpy(temporal)[None, :, None]
    patches = patches.transpose(1, 2).reshape(b, -1, patches.shape[-1])  # patch-major (n, t)
    cls = (v.embeddings.class_embedding + pos[0]).expand(b, 1, -1)
    h = v.pre_layrnorm(torch.cat([cls, patches], 1))
    h = v.encoder(inputs_embeds=h).last_hidden_state
    return model.visual_projection(v.post_layernorm(h[:, 0])).numpy()


# ---- An OpenAI-CLIP-layout torch module, to be scripted and saved as a real TorchScript archive. ----

class _QuickGELU(torch.nn.Module):
  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


class _Block(torch.nn.Module):

  def __init__(self, d: int, heads: int, mlp: int, attn_mask: Optional[torch.Tensor]):
    super().__init__()
    self.attn = torch.nn.MultiheadAttention(d, heads)
    self.ln_1, self.ln_2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
    self.mlp = torch.nn.Sequential(collections.OrderedDict(
        [('c_fc', torch.nn.Linear(d, mlp)), ('gelu', _QuickGELU()), ('c_proj', torch.nn.Linear(mlp, d))]))
    self.attn_mask = attn_mask

  def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [L, B, D], sequence first as OpenAI.
    h = self.ln_1(x)
    x = x + self.attn(h, h, h, need_weights=False, attn_mask=self.attn_mask)[0]
    return x + self.mlp(self.ln_2(x))


class _Transformer(torch.nn.Module):

  def __init__(self, d, layers, heads, mlp, attn_mask=None):
    super().__init__()
    self.resblocks = torch.nn.Sequential(*[_Block(d, heads, mlp, attn_mask) for _ in range(layers)])

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.resblocks(x)


class _Visual(torch.nn.Module):

  def __init__(self, d, layers, heads, mlp, patch, grid, out):
    super().__init__()
    self.conv1 = torch.nn.Conv2d(3, d, patch, patch, bias=False)
    self.class_embedding = torch.nn.Parameter(torch.zeros(d))
    self.positional_embedding = torch.nn.Parameter(torch.zeros(grid * grid + 1, d))
    self.ln_pre, self.ln_post = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
    self.transformer = _Transformer(d, layers, heads, mlp)
    self.proj = torch.nn.Parameter(torch.zeros(d, out))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.conv1(x).flatten(2).transpose(1, 2)
    cls = self.class_embedding.expand(x.shape[0], 1, x.shape[-1])
    x = self.ln_pre(torch.cat([cls, x], 1) + self.positional_embedding)
    x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    return self.ln_post(x[:, 0]) @ self.proj


class OpenAICLIP(torch.nn.Module):
  """The module layout of OpenAI's `clip.model.CLIP` (names and tensor layouts), for jit.save."""

  def __init__(self, model: transformers.CLIPModel):
    super().__init__()
    vc, tc = model.config.vision_config, model.config.text_config
    ctx, out = tc.max_position_embeddings, model.config.projection_dim
    self.visual = _Visual(vc.hidden_size, vc.num_hidden_layers, vc.num_attention_heads, vc.intermediate_size,
                          vc.patch_size, vc.image_size // vc.patch_size, out)
    mask = torch.full((ctx, ctx), float('-inf')).triu(1)
    self.transformer = _Transformer(tc.hidden_size, tc.num_hidden_layers, tc.num_attention_heads,
                                    tc.intermediate_size, mask)
    self.token_embedding = torch.nn.Embedding(tc.vocab_size, tc.hidden_size)
    self.positional_embedding = torch.nn.Parameter(torch.zeros(ctx, tc.hidden_size))
    self.ln_final = torch.nn.LayerNorm(tc.hidden_size)
    self.text_projection = torch.nn.Parameter(torch.zeros(tc.hidden_size, out))
    self.logit_scale = torch.nn.Parameter(torch.zeros(()))
    # OpenAI's JIT archive carries these beside the weights.
    self.register_buffer('input_resolution', torch.tensor(vc.image_size))
    self.register_buffer('context_length', torch.tensor(ctx))
    self.register_buffer('vocab_size', torch.tensor(tc.vocab_size))
    missing, unexpected = self.load_state_dict(openai_state_dict(model), strict=False)
    assert set(missing) == {'input_resolution', 'context_length', 'vocab_size'} and not unexpected

  def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
    x = self.token_embedding(ids) + self.positional_embedding
    x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.text_projection

  def forward(self, image: torch.Tensor, ids: torch.Tensor):
    return self.visual(image), self.encode_text(ids)
