"""Per-clip sampling and augmentation in numpy/PIL. Every choice names its source.

- Temporal sampling (ViCLIP `get_frame_indices`, also ViFi-CLIP's segment sampling): split the stored
  frames into T equal segments; training takes a random frame per segment ("rand"), testing the
  segment midpoints ("middle"). Test clip c of C shifts every segment's pick to (c + 0.5) / C of it.
- Random resized crop (ViCLIP's fine-tuning transform: RandomResizedCrop(224, scale=(0.5, 1.0)),
  aspect ratio 3/4..4/3 as torchvision's default), one box for all frames of a clip.
- Horizontal flip p=0.5 (ViFi-CLIP/X-CLIP pipelines); OFF where direction defines classes (SSv2, the
  synthetic set): a mirror swaps left/right and clockwise/counter-clockwise.
- Colour jitter p=0.8 (brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1: X-CLIP/ViFi-CLIP's
  `ColorJitter`) and grayscale p=0.2, as the MSTA logs record; OFF for the synthetic set (colour is a
  class factor). One draw per clip, so frames stay consistent.
- Test views: short side resized to the model resolution, then S crops along the long side (S=3:
  start, centre, end; S=1: centre), as ViFi-CLIP's 3-crop testing; or 'squash' (ViCLIP's own test
  transform: Resize((224, 224)), no crop).
- Clips leave here as uint8 pixels; normalisation with the MODEL's mean/std (ImageNet for ViCLIP, CLIP's
  for CLIP) happens on the device (msta_jax/data/normalize.py). Colour jitter and grayscale run here in
  float32 on planar clips, then round to uint8 (`Augment.uint8_colour`, the default; False ships float32
  0..1).
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image


@dataclasses.dataclass(frozen=True)
class Augment:
  crop_scale: tuple[float, float] = (0.5, 1.0)  # Area fraction; (1, 1) disables cropping.
  flip: bool = True
  color_jitter: float = 0.8                     # Probability; 0 disables.
  grayscale: float = 0.2                        # Probability; 0 disables.
  # Round colour-jittered / greyed clips to uint8, as torchvision's ColorJitter on PIL images does: 4x
  # fewer bytes to batch, to share between processes and to send to the device; moves each value by at
  # most half a grey level from the float32 result. False: float32 0..1 on the wire.
  uint8_colour: bool = True


def segment_indices(num_stored: int, num_frames: int, *, rng: np.random.Generator | None = None,
                    offset: float = 0.5) -> np.ndarray:
  """T indices into `num_stored` frames, one per equal segment: random (rng) or at `offset` of it."""
  if num_stored < 1:
    raise ValueError('a clip with no frames cannot be sampled')
  edges = np.linspace(0, num_stored, num_frames + 1)
  if rng is not None:
    pos = edges[:-1] + rng.random(num_frames) * (edges[1:] - edges[:-1])
  else:
    pos = edges[:-1] + offset * (edges[1:] - edges[:-1])
  return np.minimum(np.floor(pos).astype(np.int64), num_stored - 1)


def decode_frame(encoded: bytes) -> Image.Image:
  """One stored frame (JPEG or PNG) as an RGB image."""
  im = Image.open(io.BytesIO(encoded))
  im.load()
  return im if im.mode == 'RGB' else im.convert('RGB')  # convert('RGB') of an RGB image copies it.


def decode_frames(encoded: list[bytes], indices: np.ndarray) -> list[Image.Image]:
  """Decodes only the sampled frames (JPEG or PNG)."""
  cache: dict[int, Image.Image] = {}
  out = []
  for i in indices.tolist():
    if i not in cache:
      cache[i] = decode_frame(encoded[i])
    out.append(cache[i])
  return out


def _crop_box(w: int, h: int, scale: tuple[float, float], rng: np.random.Generator) -> tuple[int, int, int, int]:
  """torchvision RandomResizedCrop.get_params: area in `scale`, log-uniform ratio in 3/4..4/3."""
  area = w * h
  for _ in range(10):
    target = area * rng.uniform(*scale)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = int(round(np.sqrt(target * ratio))), int(round(np.sqrt(target / ratio)))
    if 0 < cw <= w and 0 < ch <= h:
      x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
      return x, y, x + cw, y + ch
  side = min(w, h)  # Fallback: centre square, as torchvision does.
  return (w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64)


def jitter_ops(rng: np.random.Generator) -> list[tuple[str, float]]:
  """One clip's colour-jitter draw: (op, factor) for brightness, contrast, saturation and hue (radians)
  in a random order, as torchvision's ColorJitter draws them."""
  b, c, s = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), rng.uniform(0.8, 1.2)
  hue = rng.uniform(-0.1, 0.1) * 2 * np.pi
  ops = [('brightness', b), ('contrast', c), ('saturation', s), ('hue', hue)]
  return [ops[k] for k in rng.permutation(len(ops))]


def _colour_matrix(op: str, f: float) -> np.ndarray:
  """The 3x3 map M (pixel @ M.T) of saturation (blend with luma) or hue (rotation in YIQ)."""
  if op == 'saturation':  # (a - gray) * f + gray
    return (f * np.eye(3) + (1 - f) * np.outer(np.ones(3), _LUMA)).astype(np.float32)
  cos, sin = np.cos(f), np.sin(f)
  rot = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]])
  return (np.linalg.inv(_TO_YIQ) @ rot @ _TO_YIQ).astype(np.float32)


# Colour ops work on PLANAR clips, [3, pixels] float32: every op is then a few numpy passes over
# contiguous planes (no BLAS: a 3x3 map as a stack of [W, 3] @ [3, 3] GEMMs cost twice as much, and one
# large GEMM starts OpenBLAS threads under the loader's threads), and the 3x3 maps round the same on
# every CPU (IEEE float32 multiplies and adds, no BLAS kernel choosing an order or an FMA).


def _mix(p: np.ndarray, m: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
  """out[c] = m[c, 0] p[0] + m[c, 1] p[1] + m[c, 2] p[2] (a 3x3 map of planar pixels), rounded per
  product and sum in this order."""
  for c in range(len(m)):
    np.multiply(p[0], m[c, 0], out=out[c])
    for k in (1, 2):
      np.multiply(p[k], m[c, k], out=tmp)
      out[c] += tmp
  return out


def _luma(p: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
  """The luma plane [pixels] of planar pixels (ITU-R 601-2, as PIL's and torchvision's grayscale)."""
  return _mix(p, _LUMA[None], out[None], tmp)[0]


def _jitter_planar(p: np.ndarray, ops: list[tuple[str, float]]) -> np.ndarray:
  """Colour jitter of planar pixels p [3, n] float32 in 0..1, clipped to 0..1 after each op; p may be
  overwritten and the result may be another buffer. Contrast blends with the clip's mean luma (one draw
  and one mean per clip, so frames stay alike)."""
  spare, tmp = np.empty_like(p), np.empty_like(p[0])
  for op, f in ops:
    if op == 'brightness':
      p *= np.float32(f)
    elif op == 'contrast':
      mean = np.float32(_luma(p, spare[0], tmp).mean(dtype=np.float64))
      p *= np.float32(f)
      p += np.float32((1 - f) * mean)
    else:
      p, spare = _mix(p, _colour_matrix(op, f), spare, tmp), p
    np.clip(p, 0.0, 1.0, out=p)
  return p


def _to_planar(x: np.ndarray) -> np.ndarray:
  """uint8 [..., 3] -> planar float32 [3, pixels] in 0..1 (v * float32(1/255), as the device's table)."""
  flat, p = x.reshape(-1, 3), np.empty((3, x.size // 3), np.float32)
  for c in range(3):  # One contiguous plane at a time: a 2-D transposed copy is 3x slower.
    p[c] = flat[:, c]
  p *= np.float32(1 / 255)
  return p


def _from_planar(planes: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
  """Planes (one per channel, or the same grey plane three times) -> interleaved [..., 3] `dtype`."""
  out = np.empty((planes[0].size, 3), dtype)
  for c, plane in enumerate(planes):
    out[:, c] = plane
  return out.reshape(shape)


def apply_jitter(x: np.ndarray, ops: list[tuple[str, float]]) -> np.ndarray:
  """Colour jitter of an interleaved clip x float32 [..., 3] in 0..1 (`train_clip` works planar)."""
  p = _jitter_planar(np.ascontiguousarray(x.reshape(-1, 3).T), ops)
  return _from_planar(list(p), x.shape, np.float32)


def colour_ops(aug: Augment) -> bool:
  """Whether `aug` may change colours to values no uint8 holds: such clips are rounded to uint8
  (`aug.uint8_colour`, the default) or ship as float32 0..1."""
  return bool(aug.color_jitter or aug.grayscale)


def wire_dtype(aug: Augment) -> type:
  """The dtype of `train_clip`'s output under `aug`."""
  return np.float32 if colour_ops(aug) and not aug.uint8_colour else np.uint8


def _colour(x: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
  """Colour jitter and greyscale of a uint8 clip, drawn from `rng` -> `wire_dtype(aug)`."""
  ops = jitter_ops(rng) if aug.color_jitter and rng.random() < aug.color_jitter else None
  grey = aug.grayscale and rng.random() < aug.grayscale
  if ops is None and not grey and aug.uint8_colour:
    return x  # rint(v * float32(1/255) * 255) == v for every uint8 v.
  p = _to_planar(x)
  if ops is not None:
    p = _jitter_planar(p, ops)
  planes = list(p)
  if grey:  # Not clipped: the luma of 0..1 is in 0..1.
    planes = [_luma(p, np.empty_like(p[0]), np.empty_like(p[0]))]
  if aug.uint8_colour:  # Every plane is in 0..1 (clipped by every colour op).
    planes = [np.rint(q * np.float32(255)).astype(np.uint8) for q in planes]
  return _from_planar(planes * (3 // len(planes)), x.shape, wire_dtype(aug))


def train_clip(frames: list[Image.Image] | list[np.ndarray], size: int, aug: Augment,
               rng: np.random.Generator) -> np.ndarray:
  """Augmented clip [T, size, size, 3], not normalised, of dtype `wire_dtype(aug)`: uint8 pixels, or
  float32 in 0..1 when `aug` has colour ops. The draws from `rng` come in the same order either way:
  crop box, flip, jitter (and its ops), greyscale. `frames`: PIL images, or decoded uint8 [H, W, 3]
  arrays (data/frame_cache.py)."""
  arrays = isinstance(frames[0], np.ndarray)
  w, h = (frames[0].shape[1], frames[0].shape[0]) if arrays else frames[0].size
  box = _crop_box(w, h, aug.crop_scale, rng) if aug.crop_scale != (1.0, 1.0) else (0, 0, w, h)
  flip = aug.flip and rng.random() < 0.5
  if arrays and box == (0, 0, w, h) and (w, h) == (size, size):
    x = np.stack(frames)  # PIL's resize returns a whole-frame box at the same size unchanged.
    if flip:
      x = np.ascontiguousarray(x[:, :, ::-1])
  else:
    if arrays:
      frames = [Image.fromarray(f) for f in frames]
    resized = [f.resize((size, size), Image.BICUBIC, box=box) for f in frames]
    if flip:  # A pixel permutation: PIL's is cheap; numpy's strided copy of a reversed view is not.
      resized = [r.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for r in resized]
    x = np.stack([np.asarray(r) for r in resized])
  return _colour(x, aug, rng) if colour_ops(aug) else x


def test_views(frames: list[Image.Image], size: int, crops: int, resize: str) -> np.ndarray:
  """Spatial views of one temporal clip: uint8 [crops, T, size, size, 3]."""
  w, h = frames[0].size
  if resize == 'squash':
    boxes = [(0, 0, w, h)] * crops
    scaled = (size, size)
  elif resize == 'short_side':
    scale = size / min(w, h)
    sw, sh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    scaled = (sw, sh)
    long_extra = (sw - size, sh - size)
    starts = [0.5] if crops == 1 else np.linspace(0, 1, crops)
    boxes = [(int(round(long_extra[0] * t)), int(round(long_extra[1] * t)),
              int(round(long_extra[0] * t)) + size, int(round(long_extra[1] * t)) + size) for t in starts]
  else:
    raise ValueError(f"test resize must be 'short_side' or 'squash', got {resize!r}")
  resized = [np.asarray(f.resize(scaled, Image.BICUBIC)) for f in frames]
  views = []
  for x0, y0, x1, y1 in boxes:
    clip = np.stack([r[y0:y1, x0:x1] if resize == 'short_side' else r for r in resized])
    views.append(clip)
  return np.stack(views)


def clip_views(get_frames, num_stored: int, num_frames: int, size: int, clips: int, crops: int, resize: str,
               clip_indices: list[np.ndarray] | None = None) -> np.ndarray:
  """All test views of one video: C temporal clips x S crops -> uint8 [C*S, T, size, size, 3].

  `get_frames(indices) -> list[PIL.Image]` supplies frames by index into the `num_stored` frames; the
  evaluation pipeline passes a JPEG decoder over stored frames, prediction passes frames it decoded
  from the file, so both score videos through this one function (and normalise them on the device through
  normalize.model_input, rule 'test').
  `clip_indices` (data/test_sampling.py) overrides the fixed offsets with C index arrays of T frames.
  """
  parts = []
  for c in range(clips):
    idx = segment_indices(num_stored, num_frames, offset=(c + 0.5) / clips) if clip_indices is None else clip_indices[c]
    parts.append(test_views(get_frames(idx), size, crops, resize))
  return np.concatenate(parts)
