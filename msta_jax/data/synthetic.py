"""Synthetic known-answer clips: classes that need temporal modelling, generated from a seed (pure numpy).

Each clip is `frames` (8) frames of `size`x`size` (32x32) RGB uint8: one filled shape on black, moving.

    Factors   colours (red, green, blue, yellow) x shapes (square, circle, triangle) = 12 compositions
              motions: 4 reversal pairs
                moving left / moving right              (axis 'horizontal')
                moving up / moving down                 (axis 'vertical')
                orbiting clockwise / counter-clockwise  (axis 'orbit': around the frame centre)
                growing / shrinking                     (axis 'size')
    Classes   (colour, shape, motion), named 'red square moving left'; 96 in a fixed order:
              class = composition * 8 + motion, composition = colour * 3 + shape (`class_names()`).
    Twins     twin(class) = class ^ 1: same colour and shape, the paired motion. A clip of an odd-motion
              class is EXACTLY the time-reversed frames of a clip rendered for its even (canonical) twin,
              so the two classes have identical frame sets and any model that averages frame features
              scores 50% between them. Rotation IN PLACE is not used: a prototype could not learn it at
              this size even fully supervised; orbiting it learnt (synthetic_demo.md).

Captions (one per clip, for backbone pre-training) are compositional and never name the direction:
"a red square moving horizontally", "... circling", "... changing size" (3 phrasings per axis, one drawn
per clip), so a backbone pre-trained on them cannot tell the two members of a pair apart zero-shot.
Descriptions (`descriptions()`, the format of data/descriptions.py) are per class: spatial texts describe
what the frames look like (identical for the two twins, whose frame sets are identical), temporal texts
say how the clip unfolds and DO name the direction. Every text fits the tiny models' 16-token context.

Compositions are split by seed (`composition_groups`): 4 are held out of pre-training (one per colour),
and the novel (base-to-novel) and target (zero-shot) compositions are those 4 plus 2 others each, so
the classes held out of a protocol's training are new shape-colour compositions, mostly never captioned
in pre-training either. Every split holds all 8 motions of each of its compositions, so every pair
appears among the training classes of every protocol, and twins are always in the same class list.

Splits (`plan(spec)`; names are the contract, labels are LOCAL ids into the split's class list):

    pretrain                  pretrain compositions x 8 motions, `pretrain_per_class` each (captions)
    few_shot_train_k{K}       all 96 classes, K per class: a random K-subset of each class's sup_train
                              clips, drawn independently per K (not nested), as ViFi-CLIP's K-shot
                              lists are subsets of the full training list
    few_shot_val / _test      all 96 classes
    b2n_train / b2n_val       base classes (16 per class for training)
    b2n_base_test / _novel_test
    zs_train / zs_val         source classes;  zs_test: target classes
    sup_train / sup_val / sup_test   all 96 classes

Val and test clips come in pairs: a canonical clip and its exact reversal share a `clip_id`, one clip per
member, so each class gets `test_per_class` clips and pair accuracy (does the true class outscore its
twin?) has chance 50% by construction. Test splits are views of one test pool (few_shot_test and
sup_test are the same clips; b2n_base_test + b2n_novel_test = that pool, split by class, as ViFi-CLIP's
base_val + novel_val = val1), and the val splits views of one val pool drawn from another stream, so a
val clip is never a test clip. Train splits each have their own pool, except the few-shot sets, which
are subsets of sup_train's.

Determinism: every pool and class draws from its own stream `np.random.default_rng([seed, pool, class])`,
so the same Spec gives byte-identical clips (on one numpy build; float rasterisation could differ by a
pixel on another CPU), and growing one split does not change the others.

    spec = synthetic.Spec(seed=0)
    for ex in synthetic.examples(spec, 'zs_test'): ...        # dicts of numpy, no TensorFlow
    arrays = synthetic.arrays(spec, 'b2n_train')              # the same, stacked

The TFDS dataset of a Spec is data/builders/synthetic.py's `build`; the command line that generates it
is msta_jax/tools/synthetic.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from msta_jax.data import descriptions as descriptions_lib
from msta_jax.data import features

SHAPES = ('square', 'circle', 'triangle')
COLOURS = ('red', 'green', 'blue', 'yellow')
MOTIONS = ('moving left', 'moving right', 'moving up', 'moving down', 'orbiting clockwise',
           'orbiting counter-clockwise', 'growing', 'shrinking')
AXES = ('horizontal', 'vertical', 'orbit', 'size')  # axis of motion m is m // 2; m even = canonical.
RGB = {'red': (255, 0, 0), 'green': (0, 255, 0), 'blue': (0, 64, 255), 'yellow': (255, 255, 0)}
NUM_COMPOSITIONS = len(COLOURS) * len(SHAPES)
NUM_CLASSES = NUM_COMPOSITIONS * len(MOTIONS)
FPS = 8.0  # Nominal frame rate of the stored frames (a clip of 8 frames lasts one second).
SPLIT_PROTOCOLS = ('few_shot', 'base_to_novel', 'zero_shot', 'supervised')

# Phrasings of the captions, per axis; none names a direction (see module docstring).
CAPTIONS = {
    'horizontal': ('a {c} {s} moving horizontally', 'a {c} {s} sliding sideways',
                   'a {c} {s} travelling along a horizontal line'),
    'vertical': ('a {c} {s} moving vertically', 'a {c} {s} sliding along a vertical line',
                 'a {c} {s} travelling vertically'),
    'orbit': ('a {c} {s} circling', 'a {c} {s} circling the centre',
              'a {c} {s} travelling around a ring'),
    'size': ('a {c} {s} changing size', 'a {c} {s} changing in size', 'a {c} {s} whose size changes'),
}
# Spatial descriptions per axis: what the frames show, order-free (the same for both twins).
_SPATIAL = {
    'horizontal': ('A {c} {s} on black, placed along a horizontal line.',
                   'A small {c} {s} of fixed size at several spots in a row.'),
    'vertical': ('A {c} {s} on black, placed along a vertical line.',
                 'A small {c} {s} of fixed size at several spots in a column.'),
    'orbit': ('A {c} {s} on black, placed on a ring around the centre.',
              'A small {c} {s} of fixed size at several spots on a circle.'),
    'size': ('A {c} {s} on black, near the middle of the frame.',
             'One {c} {s} in the middle, at sizes from small to large.'),
}
# Temporal descriptions per motion: how the clip unfolds, naming the direction.
_TEMPORAL = {
    'moving left': ('The {c} {s} starts near the right edge and slides to the left.',
                    'Frame by frame the {c} {s} travels leftwards across the frame.'),
    'moving right': ('The {c} {s} starts near the left edge and slides to the right.',
                     'Frame by frame the {c} {s} travels rightwards across the frame.'),
    'moving up': ('The {c} {s} starts near the bottom and rises to the top.',
                  'Frame by frame the {c} {s} climbs upwards through the frame.'),
    'moving down': ('The {c} {s} starts near the top and drops to the bottom.',
                    'Frame by frame the {c} {s} falls downwards through the frame.'),
    'orbiting clockwise': ('The {c} {s} circles the centre in the clockwise direction.',
                           'Over time the {c} {s} goes around the middle clockwise.'),
    'orbiting counter-clockwise': (
        'The {c} {s} circles the centre in the counter-clockwise direction.',
        'Over time the {c} {s} goes around the middle counter-clockwise.'),
    'growing': ('The {c} {s} starts small and grows larger in every frame.',
                'Over time the {c} {s} expands until it fills much of the frame.'),
    'shrinking': ('The {c} {s} starts large and shrinks smaller in every frame.',
                  'Over time the {c} {s} contracts until it is a small dot.'),
}

# Random-stream ids ("pools"): each pool's clips come from its own stream, and clip ids carry it:
# clip_id = pool * CLIP_POOL + class * CLIP_CLASS + j (for val/test, class is the canonical member).
POOL_GROUPS, POOL_PRETRAIN, POOL_TEST, POOL_VAL = 0, 1, 2, 3
POOL_B2N_TRAIN, POOL_ZS_TRAIN, POOL_SUP_TRAIN = 4, 5, 6
SUBSET_FEW_SHOT = 100  # stream choosing the K-shot subset of sup_train: 100 + K
CLIP_POOL, CLIP_CLASS = 10**9, 10**5


# --------------------------------------------------------------------------------------------------
# Factors and names.


def composition(colour: int, shape: int) -> int:
  return colour * len(SHAPES) + shape


def composition_name(comp: int) -> str:
  return f'{COLOURS[comp // len(SHAPES)]} {SHAPES[comp % len(SHAPES)]}'


def class_id(colour: int, shape: int, motion: int) -> int:
  return composition(colour, shape) * len(MOTIONS) + motion


def factors(cls: int) -> tuple[int, int, int]:
  """(colour, shape, motion) ids of a global class id."""
  comp, motion = divmod(cls, len(MOTIONS))
  colour, shape = divmod(comp, len(SHAPES))
  return colour, shape, motion


def twin(cls: int) -> int:
  """The reversed class: same colour and shape, paired motion."""
  return cls ^ 1


def class_name(cls: int) -> str:
  colour, shape, motion = factors(cls)
  return f'{COLOURS[colour]} {SHAPES[shape]} {MOTIONS[motion]}'


def class_names() -> list[str]:
  """The 96 class names in global id order."""
  return [class_name(c) for c in range(NUM_CLASSES)]


def classes_of(comps) -> tuple[int, ...]:
  """Global ids of every motion of the given compositions, in global order."""
  return tuple(sorted(c * len(MOTIONS) + m for c in comps for m in range(len(MOTIONS))))


# --------------------------------------------------------------------------------------------------
# Composition groups.


def composition_groups(seed: int) -> dict[str, tuple[int, ...]]:
  """Which compositions each protocol trains on / holds out, drawn from `seed`.

  held_out: 4 compositions, one per colour with the 3 shapes each used at least once (one twice); the
    other 8 are `pretrain`, so pre-training sees every colour twice and every shape at least twice.
  novel (base-to-novel) and target (zero-shot): held_out plus 2 pretrain compositions of the two shapes
    held out only once, of two different colours, so each shape appears exactly twice in novel/target
    and in base/source, and base/source still hold every colour. The two extras of `target` differ from
    those of `novel` (the seed picks among all valid choices).
  Returns sorted composition ids per group.
  """
  rng = np.random.default_rng([seed, POOL_GROUPS])
  n_shapes = len(SHAPES)
  shape_of = np.concatenate([rng.permutation(n_shapes), rng.integers(n_shapes, size=1)])
  shape_of = rng.permutation(shape_of)                      # shape held out for each colour
  held = [composition(colour, int(s)) for colour, s in enumerate(shape_of)]
  pretrain = [c for c in range(NUM_COMPOSITIONS) if c not in held]
  counts = np.bincount(shape_of, minlength=n_shapes)
  single = [s for s in range(n_shapes) if counts[s] == 1]   # the two shapes held out once
  options = []
  for a in pretrain:
    for b in pretrain:
      if (a % n_shapes, b % n_shapes) == tuple(single) and a // n_shapes != b // n_shapes:
        options.append((a, b))
  novel_extra = options[int(rng.integers(len(options)))]
  disjoint = [o for o in options if not set(o) & set(novel_extra)]
  target_extra = disjoint[int(rng.integers(len(disjoint)))]
  novel = sorted(held + list(novel_extra))
  target = sorted(held + list(target_extra))
  every = range(NUM_COMPOSITIONS)
  return {
      'pretrain': tuple(pretrain), 'held_out': tuple(sorted(held)),
      'base': tuple(c for c in every if c not in novel), 'novel': tuple(novel),
      'source': tuple(c for c in every if c not in target), 'target': tuple(target),
  }


# --------------------------------------------------------------------------------------------------
# Spec and split plan.


@dataclasses.dataclass(frozen=True)
class Spec:
  """Everything a build depends on; two equal Specs give byte-identical datasets."""
  seed: int = 0
  frames: int = 8                 # Frames per clip.
  size: int = 32                  # Frame height = width, pixels.
  pretrain_per_class: int = 188   # x 64 pretrain classes = 12,032 captioned clips.
  few_shot_shots: tuple[int, ...] = (2, 4, 8, 16, 32, 64)   # Each <= sup_train_per_class.
  val_per_class: int = 8          # Val clips per class (in pairs with the twin's).
  test_per_class: int = 16        # Test clips per class (in pairs with the twin's).
  b2n_train_per_class: int = 16   # ViFi-CLIP's base-to-novel uses 16 shots per base class.
  zs_train_per_class: int = 64
  sup_train_per_class: int = 64

  def __post_init__(self):
    object.__setattr__(self, 'few_shot_shots', tuple(int(k) for k in self.few_shot_shots))
    if self.frames < 2:
      raise ValueError(f'frames must be >= 2 to show a motion, got {self.frames}')
    if self.size < 16:
      raise ValueError(f'size must be >= 16 pixels, got {self.size}')
    counts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
              if f.name.endswith('_per_class')}
    counts.update({f'few_shot_k{k}': k for k in self.few_shot_shots})
    for name, n in counts.items():
      if not 1 <= n < CLIP_CLASS:
        raise ValueError(f'{name} must be in [1, {CLIP_CLASS}), got {n}')
    if len(set(self.few_shot_shots)) != len(self.few_shot_shots) or not self.few_shot_shots:
      raise ValueError(f'few_shot_shots must be distinct and non-empty, got {self.few_shot_shots}')
    if max(self.few_shot_shots) > self.sup_train_per_class:
      raise ValueError(f'few-shot sets are subsets of sup_train: shots {self.few_shot_shots} need '
                       f'sup_train_per_class >= {max(self.few_shot_shots)}, got {self.sup_train_per_class}')

  def to_dict(self) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

  @property
  def name(self) -> str:
    """Directory-safe name: 'seed0' for the default sizes, else 'seed0_<hash of the rest>'."""
    rest = {k: v for k, v in self.to_dict().items() if k != 'seed'}
    default = {k: v for k, v in Spec().to_dict().items() if k != 'seed'}
    if rest == default:
      return f'seed{self.seed}'
    digest = hashlib.sha1(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:10]
    return f'seed{self.seed}_{digest}'


@dataclasses.dataclass(frozen=True)
class SplitPlan:
  """One split: its classes (global ids, in global order; labels index this tuple) and its clips."""
  name: str
  protocol: str         # 'pretrain' or one of SPLIT_PROTOCOLS.
  role: str             # 'train' | 'val' | 'test'.
  class_list: str       # 'full' | 'pretrain' | 'base' | 'novel' | 'source' | 'target'.
  classes: tuple[int, ...]
  pool: int             # Random stream id of the clips (see POOL_*).
  per_class: int
  paired: bool          # Canonical clips and their exact reversals sharing clip_id (val/test).
  pool_per_class: int = 0   # Clips per class in the pool when the split takes a subset of it.
  subset: int = -1          # Stream id choosing that subset (-1: the split is the whole pool).

  @property
  def num_examples(self) -> int:
    return len(self.classes) * self.per_class


def plan(spec: Spec) -> dict[str, SplitPlan]:
  """Every split of `spec`, in a fixed order."""
  g = composition_groups(spec.seed)
  full = tuple(range(NUM_CLASSES))
  lists = {'full': full, **{k: classes_of(g[k]) for k in ('pretrain', 'base', 'novel', 'source',
                                                          'target')}}
  rows = [('pretrain', 'pretrain', 'train', 'pretrain', POOL_PRETRAIN, spec.pretrain_per_class)]
  rows += [(f'few_shot_train_k{k}', 'few_shot', 'train', 'full', POOL_SUP_TRAIN, k)
           for k in spec.few_shot_shots]
  val, test = (POOL_VAL, spec.val_per_class), (POOL_TEST, spec.test_per_class)
  rows += [
      ('few_shot_val', 'few_shot', 'val', 'full', *val),
      ('few_shot_test', 'few_shot', 'test', 'full', *test),
      ('b2n_train', 'base_to_novel', 'train', 'base', POOL_B2N_TRAIN, spec.b2n_train_per_class),
      ('b2n_val', 'base_to_novel', 'val', 'base', *val),
      ('b2n_base_test', 'base_to_novel', 'test', 'base', *test),
      ('b2n_novel_test', 'base_to_novel', 'test', 'novel', *test),
      ('zs_train', 'zero_shot', 'train', 'source', POOL_ZS_TRAIN, spec.zs_train_per_class),
      ('zs_val', 'zero_shot', 'val', 'source', *val),
      ('zs_test', 'zero_shot', 'test', 'target', *test),
      ('sup_train', 'supervised', 'train', 'full', POOL_SUP_TRAIN, spec.sup_train_per_class),
      ('sup_val', 'supervised', 'val', 'full', *val),
      ('sup_test', 'supervised', 'test', 'full', *test),
  ]
  out = {name: SplitPlan(name, protocol, role, cl, lists[cl], pool, n, role != 'train')
         for name, protocol, role, cl, pool, n in rows}
  for k in spec.few_shot_shots:
    name = f'few_shot_train_k{k}'
    out[name] = dataclasses.replace(out[name], pool_per_class=spec.sup_train_per_class,
                                    subset=SUBSET_FEW_SHOT + k)
  return out


# --------------------------------------------------------------------------------------------------
# Rendering.


def _trajectory(rng: np.random.Generator, axis: int, n: int, frames: int, size: int):
  """Centre x, y and half-size r, each float64 [n, T], of the CANONICAL motion of `axis`.

  Canonical: moving left, moving up, orbiting clockwise (y points down, so increasing angle turns
  clockwise on screen), growing. Every draw is symmetric under time reversal (a path's start is as
  likely to be its end), so a reversed clip is a typical clip of the twin class.
  """
  k = size / 32.0
  tau = np.linspace(0.0, 1.0, frames)[None, :]                      # [1, T]
  u = lambda lo, hi: rng.uniform(lo, hi, size=(n, 1))              # noqa: E731
  if axis in (0, 1):                                                # translation
    r = u(3.0 * k, 4.5 * k)
    length = u(0.35 * size, 0.55 * size)
    margin = r + k
    start = margin + length + rng.uniform(size=(n, 1)) * (size - 2 * margin - length)
    along = start - length * tau                                    # decreasing: left / up
    across = margin + rng.uniform(size=(n, 1)) * (size - 2 * margin)
    across = np.broadcast_to(across, along.shape)
    x, y = (along, across) if axis == 0 else (across, along)
    r = np.broadcast_to(r, along.shape)
  elif axis == 2:                                                   # orbit around the centre
    cx, cy = size / 2 + u(-k, k), size / 2 + u(-k, k)
    radius = u(0.22 * size, 0.28 * size)
    theta = u(0.0, 2 * np.pi) + u(0.5, 0.8) * 2 * np.pi * tau
    x, y = cx + radius * np.cos(theta), cy + radius * np.sin(theta)
    r = np.broadcast_to(u(3.0 * k, 4.0 * k), x.shape)
  else:                                                             # size
    cx, cy = size / 2 + u(-2.5 * k, 2.5 * k), size / 2 + u(-2.5 * k, 2.5 * k)
    r0, r1 = u(2.0 * k, 3.0 * k), u(9.0 * k, 11.0 * k)
    r = r0 + (r1 - r0) * tau
    x, y = np.broadcast_to(cx, r.shape), np.broadcast_to(cy, r.shape)
  return x, y, r


def _rasterise(shape: int, x, y, r, size: int) -> np.ndarray:
  """bool [n, T, S, S]: pixel centres inside the shape (no anti-aliasing)."""
  grid = np.arange(size, dtype=np.float64) + 0.5
  dx = grid[None, None, None, :] - x[..., None, None]               # [n, T, 1, S]
  dy = grid[None, None, :, None] - y[..., None, None]               # [n, T, S, 1]
  r = r[..., None, None]
  if SHAPES[shape] == 'square':
    return (np.abs(dx) <= r) & (np.abs(dy) <= r)
  if SHAPES[shape] == 'circle':
    return dx * dx + dy * dy <= r * r
  # Triangle pointing up (it never rotates): apex at y - r, base of width 2r at y + r.
  return (np.abs(dy) <= r) & (np.abs(dx) <= 0.5 * (dy + r))


def render(rng: np.random.Generator, cls: int, n: int, frames: int = 8, size: int = 32,
           which: np.ndarray | None = None):
  """`n` clips of class `cls` from `rng`: (uint8 [n, T, S, S, 3], captions [n]), or [len(which), ...].

  Renders the canonical (even) motion of the pair and reverses time for an odd motion, so the clips of
  `twin(cls)` drawn from the same stream state are exactly these frames reversed. Per clip: the path
  (start, length, speed, orbit radius and phase, sizes), then the colour's value (x0.75..1: hue kept,
  so the 4 colours stay distinct), then the caption's phrasing. With `which` (indices into the n),
  only those clips are drawn on frames: the same pixels as in the full set, at a fraction of the cost.
  """
  colour, shape, motion = factors(cls)
  x, y, r = _trajectory(rng, motion // 2, n, frames, size)
  value = rng.uniform(0.75, 1.0, size=n)
  templates = CAPTIONS[AXES[motion // 2]]
  phrasing = rng.integers(len(templates), size=n)
  if which is not None:
    x, y, r, value, phrasing = x[which], y[which], r[which], value[which], phrasing[which]
  rgb = np.rint(np.asarray(RGB[COLOURS[colour]], np.float64)[None, :] * value[:, None])
  rgb = rgb.astype(np.uint8)
  mask = _rasterise(shape, x, y, r, size)
  video = np.empty(mask.shape + (3,), np.uint8)
  for ch in range(3):  # per channel: ~6x faster than broadcasting over a trailing axis of 3
    np.multiply(mask, rgb[:, ch, None, None, None], out=video[..., ch])
  if motion % 2:
    video = video[:, ::-1]
  captions = [templates[p].format(c=COLOURS[colour], s=SHAPES[shape]) for p in phrasing]
  return np.ascontiguousarray(video), captions


def _stream(spec: Spec, pool: int, cls: int) -> np.random.Generator:
  return np.random.default_rng([spec.seed, pool, cls])


def examples(spec: Spec, split: str | SplitPlan) -> Iterator[dict[str, Any]]:
  """The examples of one split, in a fixed order, as numpy (the TFDS schema plus factors).

  Each: video uint8 [T, S, S, 3], label (local id), caption, shape, colour, motion, clip_id. Paired
  splits yield each canonical clip followed by its exact reversal (the twin's clip, same clip_id).
  """
  p = plan(spec)[split] if isinstance(split, str) else split
  local = {c: i for i, c in enumerate(p.classes)}

  def example(video, cls, caption, clip_id):
    colour, shape, motion = factors(cls)
    return {'video': video, 'label': local[cls], 'caption': caption, 'shape': shape,
            'colour': colour, 'motion': motion, 'clip_id': clip_id}

  if p.paired and any(twin(c) not in local for c in p.classes):
    raise ValueError(f'{p.name}: a paired split must hold both members of every pair')
  if p.paired:
    for a in p.classes:
      if a % 2:
        continue
      videos, captions = render(_stream(spec, p.pool, a), a, p.per_class, spec.frames, spec.size)
      for j, (video, caption) in enumerate(zip(videos, captions)):
        clip_id = p.pool * CLIP_POOL + a * CLIP_CLASS + j
        yield example(video, a, caption, clip_id)
        yield example(np.ascontiguousarray(video[::-1]), twin(a), caption, clip_id)
  else:
    for c in p.classes:
      rng = _stream(spec, p.pool, c)
      if p.subset < 0:
        ids = np.arange(p.per_class)
        videos, captions = render(rng, c, p.per_class, spec.frames, spec.size)
      else:  # p.per_class clips of the pool's p.pool_per_class, chosen by their own stream
        pick = np.random.default_rng([spec.seed, p.subset, c])
        ids = np.sort(pick.choice(p.pool_per_class, p.per_class, replace=False))
        videos, captions = render(rng, c, p.pool_per_class, spec.frames, spec.size, which=ids)
      for j, video, caption in zip(ids.tolist(), videos, captions):
        yield example(video, c, caption, p.pool * CLIP_POOL + c * CLIP_CLASS + j)


def arrays(spec: Spec, split: str) -> dict[str, np.ndarray]:
  """`examples` stacked: video uint8 [N, T, S, S, 3], label/shape/colour/motion/clip_id int64 [N],
  caption str [N]. The in-memory path for machines without TensorFlow."""
  exs = list(examples(spec, split))
  out = {k: np.stack([e[k] for e in exs]) if k == 'video' else
         np.asarray([e[k] for e in exs], dtype=object if k == 'caption' else np.int64)
         for k in ('video', 'label', 'caption', 'shape', 'colour', 'motion', 'clip_id')}
  out['caption'] = out['caption'].astype(str)
  return out


# --------------------------------------------------------------------------------------------------
# Descriptions and metadata.


def descriptions() -> dict[str, dict[str, list[str]]]:
  """Spatial and temporal descriptions of the 96 classes, in data/descriptions.py's format."""
  out = {}
  for cls in range(NUM_CLASSES):
    colour, shape, motion = factors(cls)
    fill = dict(c=COLOURS[colour], s=SHAPES[shape])
    out[class_name(cls)] = {
        'spatial': [t.format(**fill) for t in _SPATIAL[AXES[motion // 2]]],
        'temporal': [t.format(**fill) for t in _TEMPORAL[MOTIONS[motion]]],
    }
  return out


def write_descriptions(path: str) -> None:
  """Writes `descriptions()` as a descriptions JSON file (class-list order)."""
  descriptions_lib.save(descriptions(), path, class_names())


def metadata(spec: Spec) -> dict[str, Any]:
  """JSON-able dataset metadata: per-split class lists (features.split_metadata), factors, groups,
  protocols, the spec and the descriptions."""
  g = composition_groups(spec.seed)
  splits, protocols = {}, {}
  for name, p in plan(spec).items():
    local = {c: i for i, c in enumerate(p.classes)}
    per_class = [dict(zip(('colour', 'shape', 'motion'), factors(c)), twin=local.get(twin(c), -1))
                 for c in p.classes]
    splits[name] = features.split_metadata(
        [class_name(c) for c in p.classes], p.class_list, f'msta_jax.data.synthetic ({spec.name})',
        factors=per_class, protocol=p.protocol, role=p.role, num_examples=p.num_examples,
        paired=p.paired)
    roles = protocols.setdefault(p.protocol, {'train': [], 'val': [], 'test': []})
    roles[p.role].append(name)
  return {
      'spec': spec.to_dict(), 'seed': spec.seed, 'frames': spec.frames, 'size': spec.size,
      'fps': FPS, 'classes': class_names(),
      'factors': {'colours': list(COLOURS), 'shapes': list(SHAPES), 'motions': list(MOTIONS),
                  'axes': list(AXES), 'twin_motion': [m ^ 1 for m in range(len(MOTIONS))]},
      'compositions': [composition_name(c) for c in range(NUM_COMPOSITIONS)],
      'groups': {k: [composition_name(c) for c in v] for k, v in g.items()},
      'protocols': protocols, 'splits': splits, 'descriptions': descriptions(),
  }
