"""Analytic model FLOPs of a forward pass and a train step, for MFU (benchmarks/train_step.py).

Matmuls only, 2 FLOPs per multiply-add; normalisation, activations and softmax are left out (< 3% of
ViT-B/16). With L tokens of width D and MLP width M, one transformer block's forward is

    F_block(L) = L * (8 D^2 + 4 D M)      q/k/v (6 L D^2), out_proj (2 L D^2), MLP (4 L D M)
               + 4 L^2 D                  QK^T and PV over all heads (causal text attention counted in full)

and the last vision block under the CLS head (first_token_only) computes k and v for every token but
the rest for token 0 alone: F_last(L) = 4 L D^2 + 4 D^2 + 4 L D + 4 D M. The patch embedding adds
2 * patches * 3 p^2 * D, each projection head 2 D E per embedding, an MSTA branch per token
4 D d + 2 d^2 (down, shared middle, up; d the bottleneck). A video is B*T frames of 1 + P tokens
(frame average) or B sequences of 1 + P*T tokens (ViCLIP's joint attention); the classification step
encodes its B clips and its C class prompts (context length L_t).

A train step counts the backward at 2x the forward of every part whose weights train (input and
weight gradients) and 1x where only the input gradient is needed (Kaplan et al. 2020; PaLM's 6N):
- full fine-tuning: 3 x forward;
- frozen backbone with MSTA: forward + 1x the blocks after the first adapted block in each tower
  (the gradient reaching the adapters) + 2x the adapters' forward. Nothing before the first adapted
  block has a backward pass (train/step.py).
Recomputation under remat is not counted: it is not model work.
"""
from __future__ import annotations

from msta_jax.models.adapters import MSTAConfig
from msta_jax.models.clip import ModelConfig


def block(tokens: int, width: int, mlp_dim: int) -> float:
  return tokens * (8 * width ** 2 + 4 * width * mlp_dim) + 4 * tokens ** 2 * width


def cls_block(tokens: int, width: int, mlp_dim: int) -> float:
  """The last vision block when only token 0's output is read."""
  return 4 * tokens * width ** 2 + 4 * width ** 2 + 4 * tokens * width + 4 * width * mlp_dim


def _video_shape(cfg: ModelConfig, clips: int) -> tuple[int, int]:
  """(sequences, tokens per sequence) of encode_video over `clips` clips."""
  v = cfg.vision
  patches = (v.image_size // v.patch_size) ** 2
  if cfg.video_mode == 'joint':
    return clips, 1 + patches * v.num_frames
  return clips * v.num_frames, 1 + patches


def video_blocks(cfg: ModelConfig, clips: int) -> list[float]:
  """Forward FLOPs of each vision block over `clips` clips."""
  v = cfg.vision
  seqs, tokens = _video_shape(cfg, clips)
  per = [seqs * block(tokens, v.width, v.mlp_dim)] * v.layers
  per[-1] = seqs * cls_block(tokens, v.width, v.mlp_dim)
  return per


def text_blocks(cfg: ModelConfig, texts: int) -> list[float]:
  t = cfg.text
  return [texts * block(t.context_length, t.width, t.mlp_dim)] * t.layers


def _head(n: int, width: int, cfg: ModelConfig) -> float:
  return 2 * n * width * cfg.embed_dim


def video_forward(cfg: ModelConfig, clips: int) -> float:
  v = cfg.vision
  seqs, _ = _video_shape(cfg, clips)
  patches = (v.image_size // v.patch_size) ** 2
  embed = 2 * clips * v.num_frames * patches * 3 * v.patch_size ** 2 * v.width
  return embed + sum(video_blocks(cfg, clips)) + _head(seqs, v.width, cfg)


def text_forward(cfg: ModelConfig, texts: int) -> float:
  return sum(text_blocks(cfg, texts)) + _head(texts, cfg.text.width, cfg)


def adapter_forward(cfg: ModelConfig, msta: MSTAConfig, clips: int, texts: int) -> float:
  d = msta.bottleneck
  seqs, tokens = _video_shape(cfg, clips)
  out = 0.0
  if msta.video:
    out += len(msta.blocks(cfg.vision.layers)) * seqs * tokens * (4 * cfg.vision.width * d + 2 * d * d)
  if msta.text:
    t = cfg.text
    out += len(msta.blocks(t.layers)) * texts * t.context_length * (4 * t.width * d + 2 * d * d)
  return out


def classification_step(cfg: ModelConfig, clips: int, texts: int, msta: MSTAConfig | None) -> dict[str, float]:
  """{'forward', 'step'} FLOPs of the classification train step: `clips` clips against `texts` class
  prompts; `msta` None is full fine-tuning, else the frozen backbone with these adapters."""
  forward = video_forward(cfg, clips) + text_forward(cfg, texts)
  if msta is None:
    return {'forward': forward, 'step': 3 * forward}
  forward += adapter_forward(cfg, msta, clips, texts)
  backward = 2 * adapter_forward(cfg, msta, clips, texts)
  if msta.video:  # The input gradient from the head down to the first adapted block's output.
    first = min(msta.blocks(cfg.vision.layers))
    backward += sum(video_blocks(cfg, clips)[first + 1:]) + _head(_video_shape(cfg, clips)[0], cfg.vision.width, cfg)
  if msta.text:
    first = min(msta.blocks(cfg.text.layers))
    backward += sum(text_blocks(cfg, texts)[first + 1:]) + _head(texts, cfg.text.width, cfg)
  return {'forward': forward, 'step': forward + backward}
