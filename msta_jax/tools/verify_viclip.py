"""Reproduces InternVid's ViCLIP demo notebook with our port, and compares with what it printed.

    python -m msta_jax.tools.verify_viclip --checkpoint=ViCLIP-B_InternVid-FLT-10M.pth --video=example1.mp4

The notebook (OpenGVLab/InternVideo Data/InternVid/demo.ipynb) decodes every frame of example1.mp4,
takes frames[::len // 8][:8], resizes each to 224x224 (cv2 bilinear), scales to [0, 1], normalises with
ImageNet mean/std, and ranks its 10 captions by softmax(100 * cosine). Its ViCLIP-B/16
(InternVid-10M-FLT) output is below; our port on the same clip should agree to about 1e-2 (decoder and
resize arithmetic differ slightly from OpenCV). Exit status 0 when every top-5 probability is within
--tolerance, 1 otherwise.
"""
from __future__ import annotations

import hashlib
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from msta_jax import models
from msta_jax.data import decode
from msta_jax.models import resize

CAPTIONS = [
    'A playful dog and its owner wrestle in the snowy yard, chasing each other with joyous abandon.',
    'A man in a gray coat walks through the snowy landscape, pulling a sleigh loaded with toys.',
    'A person dressed in a blue jacket shovels the snow-covered pavement outside their house.',
    'A pet dog excitedly runs through the snowy yard, chasing a toy thrown by its owner.',
    'A person stands on the snowy floor, pushing a sled loaded with blankets, preparing for a fun-filled ride.',
    'A man in a gray hat and coat walks through the snowy yard, carefully navigating around the trees.',
    'A playful dog slides down a snowy hill, wagging its tail with delight.',
    'A person in a blue jacket walks their pet on a leash, enjoying a peaceful winter walk among the trees.',
    'A man in a gray sweater plays fetch with his dog in the snowy yard, throwing a toy and watching it run.',
    'A person bundled up in a blanket walks through the snowy landscape, enjoying the serene winter scenery.',
]
# (caption index, probability) as the notebook printed them for ViCLIP-B/16 InternVid-10M-FLT.
NOTEBOOK_TOP5 = [(0, 0.8192), (8, 0.1084), (3, 0.0676), (6, 0.0047), (2, 0.0002)]
DEMO_CLIP_SHA256 = '8da3fb45df69e628d09809e88b3f3725568de5d094a45361dea2a54d3e205f17'


def demo_frames(frames: np.ndarray, num: int, size: int, mean, std) -> np.ndarray:
  """The notebook's `frames2tensor`: [T, H, W, 3] uint8 RGB -> [num, size, size, 3] float32."""
  if len(frames) < num:
    raise ValueError(f'the video has {len(frames)} frames; the demo needs at least {num}')
  picked = frames[:: len(frames) // num][:num].astype(np.float64)
  along = lambda x, axis: np.moveaxis(resize.linear_1d(np.moveaxis(x, axis, 0), size), 0, axis)
  out = along(along(picked, 1), 2)  # Rows, then columns: separable bilinear like cv2.INTER_LINEAR.
  out = np.clip(np.rint(out), 0, 255)  # cv2.resize of uint8 rounds to uint8.
  return ((out / 255.0 - np.asarray(mean)) / np.asarray(std)).astype(np.float32)


def caption_probs(checkpoint: str, video: str) -> np.ndarray:
  """softmax(100 * cos(video, caption)) over CAPTIONS, as the notebook computes it."""
  model, params = models.load(checkpoint)
  cfg = model.cfg
  x = demo_frames(decode.read_video(video), cfg.vision.num_frames, cfg.vision.image_size, cfg.mean, cfg.std)
  v = model.apply({'params': params}, x[None], method=model.encode_video)
  ids, _ = models.Tokenizer(cfg.text.context_length)(CAPTIONS)
  t = model.apply({'params': params}, ids, method=model.encode_text)
  v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
  t = t / jnp.linalg.norm(t, axis=-1, keepdims=True)
  return np.asarray(jax.nn.softmax(100.0 * (v @ t.T), axis=-1)[0], np.float64)


def compare(probs: np.ndarray, expected: list[tuple[int, float]], tolerance: float) -> tuple[bool, list[dict]]:
  rows = [{'caption': CAPTIONS[i], 'ours': float(probs[i]), 'notebook': p, 'diff': float(probs[i]) - p}
          for i, p in expected]
  return all(abs(r['diff']) <= tolerance for r in rows), rows




def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program (importing it for its functions
  must not claim global flag names that another tool also uses)."""
  global _CKPT, _VIDEO, _TOL, _EXPECTED
  _CKPT = flags.DEFINE_string('checkpoint', None, 'ViCLIP checkpoint (.pth, .safetensors or HF-style dir).')
  _VIDEO = flags.DEFINE_string('video', None, "The notebook's example1.mp4.")
  _TOL = flags.DEFINE_float('tolerance', 1e-2, 'Largest accepted absolute difference per probability.')
  _EXPECTED = flags.DEFINE_string('expected', None,
                                  'JSON [[caption_index, prob], ...] to compare with instead of the notebook.')


def main(argv: list[str]) -> None:
  del argv
  if not _CKPT.value or not _VIDEO.value:
    raise app.UsageError('--checkpoint and --video are required (see BUILD.md, "Checking ViCLIP weights")')
  if hashlib.sha256(open(_VIDEO.value, 'rb').read()).hexdigest() != DEMO_CLIP_SHA256:
    print(f'note: {_VIDEO.value} is not the notebook clip (sha256 differs); the notebook numbers do '
          'not apply to it', file=sys.stderr)
  expected = [tuple(e) for e in json.loads(open(_EXPECTED.value).read())] if _EXPECTED.value else NOTEBOOK_TOP5
  probs = caption_probs(_CKPT.value, _VIDEO.value)
  ok, rows = compare(probs, expected, _TOL.value)
  for r in rows:
    print(f"{r['ours']:.4f}  notebook {r['notebook']:.4f}  diff {r['diff']:+.4f}  {r['caption'][:70]}")
  print(json.dumps({'pass': ok, 'tolerance': _TOL.value, 'probs': [round(float(p), 6) for p in probs]}))
  sys.exit(0 if ok else 1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
