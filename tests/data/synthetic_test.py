"""The synthetic known-answer set: reversal pairs, chance for frame averages, splits, determinism, TFDS."""
from __future__ import annotations

import glob
import hashlib
import io
import os
import re

import numpy as np
import pytest

from msta_jax.data import descriptions as D
from msta_jax.data import synthetic as S

# A small Spec: every split exists, the whole build is ~1.8k clips.
SMALL = dict(pretrain_per_class=2, few_shot_shots=(1, 2), val_per_class=2, test_per_class=3,
             b2n_train_per_class=1, zs_train_per_class=2, sup_train_per_class=3)
SPEC = S.Spec(seed=0, **SMALL)
# Words that would name a direction (prefix match at a word start: 'grow' matches 'growing').
DIRECTION = re.compile(r'\b(left|right|up|down|clockwise|counter|anticlockwise|grow|shrink|rise|rising|'
                       r'fall|drop|climb|expand|contract|bigger|smaller|larger|forward|backward)', re.I)
TRAIN_SPLITS = [n for n, p in S.plan(SPEC).items() if p.role == 'train']


def _arrays(split, spec=SPEC):
  return S.arrays(spec, split)


# --------------------------------------------------------------------------------------------------
# Direction oracle: reads the motion off the pixels, so a label that disagrees with the screen fails.


def _oracle_motion(video: np.ndarray, axis: int) -> int:
  """Motion id that the frames show, for a clip whose axis is known (centroids, areas, turning)."""
  mask = video.max(axis=-1) > 0                                  # [T, S, S]
  area = mask.sum(axis=(1, 2)).astype(float)
  ys, xs = np.mgrid[0:mask.shape[1], 0:mask.shape[2]]
  cx = (mask * xs).sum(axis=(1, 2)) / area
  cy = (mask * ys).sum(axis=(1, 2)) / area
  if axis == 0:
    return 0 if cx[-1] < cx[0] else 1                            # left / right
  if axis == 1:
    return 2 if cy[-1] < cy[0] else 3                            # up (y points down) / down
  if axis == 2:
    px, py = cx - (mask.shape[2] / 2), cy - (mask.shape[1] / 2)
    turn = np.sum(px[:-1] * py[1:] - py[:-1] * px[1:])           # > 0: clockwise on screen (y down)
    return 4 if turn > 0 else 5
  return 6 if area[-1] > area[0] else 7                          # growing / shrinking


# --------------------------------------------------------------------------------------------------
# Classes, factors, captions, descriptions.


def test_classes_factors_and_twins():
  names = S.class_names()
  assert len(names) == len(set(names)) == S.NUM_CLASSES == 96
  assert names[:3] == ['red square moving left', 'red square moving right', 'red square moving up']
  assert names[-1] == 'yellow triangle shrinking'
  for c in range(S.NUM_CLASSES):
    colour, shape, motion = S.factors(c)
    assert S.class_id(colour, shape, motion) == c
    assert names[c] == f'{S.COLOURS[colour]} {S.SHAPES[shape]} {S.MOTIONS[motion]}'
    t = S.twin(c)
    assert S.twin(t) == c and t != c
    assert S.factors(t) == (colour, shape, motion ^ 1)


@pytest.mark.parametrize('cls', [0, 3, 4, 7, 13, 95])
def test_twin_clips_are_exact_reversals(cls):
  """The same stream state renders a class and its twin as exactly reversed frames."""
  a, cap_a = S.render(np.random.default_rng(7), cls, 5)
  b, cap_b = S.render(np.random.default_rng(7), S.twin(cls), 5)
  assert a.dtype == np.uint8 and a.shape == (5, 8, 32, 32, 3)
  np.testing.assert_array_equal(b, a[:, ::-1])
  assert cap_a == cap_b
  for clip in a:  # one shape of its own colour on black, visible in every frame
    assert (clip.max(axis=-1) > 0).sum(axis=(1, 2)).min() > 4


@pytest.mark.parametrize('axis', range(4))
def test_shapes_stay_inside_the_frame(axis):
  for size in (16, 32, 64):
    x, y, r = S._trajectory(np.random.default_rng(axis), axis, 2000, 8, size)
    assert (x - r).min() >= 0 and (y - r).min() >= 0
    assert (x + r).max() <= size and (y + r).max() <= size
    step = np.hypot(np.diff(x, axis=1), np.diff(y, axis=1)) + 2 * np.abs(np.diff(r, axis=1))
    assert step.min() > 0.04 * size                # position or width changes visibly every frame


@pytest.mark.parametrize('frames,size', [(8, 32), (4, 32), (16, 48)])
def test_labels_match_what_the_pixels_show(frames, size):
  rng = np.random.default_rng(3)
  for cls in range(0, S.NUM_CLASSES, 5):
    videos, _ = S.render(rng, cls, 6, frames, size)
    assert videos.shape == (6, frames, size, size, 3)
    motion = S.factors(cls)[2]
    assert [_oracle_motion(v, motion // 2) for v in videos] == [motion] * 6, S.class_name(cls)


def test_colours_stay_distinct_under_jitter():
  rng = np.random.default_rng(1)
  for colour in range(len(S.COLOURS)):
    videos, _ = S.render(rng, S.class_id(colour, 0, 0), 50)
    pixels = videos.reshape(-1, 3)[videos.reshape(-1, 3).max(axis=1) > 0]
    on = set(map(tuple, (pixels > 0).astype(int)))          # which channels are lit
    assert on == {tuple(int(v > 0) for v in S.RGB[S.COLOURS[colour]])}
    assert pixels.max() >= 190 and pixels[pixels > 0].min() >= 0.75 * 64 - 1


def test_captions_never_name_the_direction():
  for axis, templates in S.CAPTIONS.items():
    for t in templates:
      assert not DIRECTION.search(t), t
  ex = _arrays('zs_test')
  for caption, colour, shape in zip(ex['caption'], ex['colour'], ex['shape']):
    assert not DIRECTION.search(caption), caption
    assert S.COLOURS[colour] in caption and S.SHAPES[shape] in caption
  assert len(set(_arrays('pretrain')['caption'])) > 50     # phrasings vary per clip


def test_descriptions():
  descs = S.descriptions()
  names = S.class_names()
  assert list(descs) == names
  cues = {0: 'left', 1: 'right', 2: 'up|rise|top', 3: 'down|drop|fall', 4: r'(?<!counter-)clockwise',
          5: 'counter-clockwise', 6: 'grow|expand', 7: 'shrink|contract'}
  for c, name in enumerate(names):
    entry, twin = descs[name], descs[names[S.twin(c)]]
    assert len(entry['spatial']) >= 2 and len(entry['temporal']) >= 2
    assert entry['spatial'] == twin['spatial']                # identical frame sets, identical looks
    assert not set(entry['temporal']) & set(twin['temporal'])
    colour_shape = ' '.join(name.split()[:2])
    for text in entry['spatial']:
      assert colour_shape in text and not DIRECTION.search(text), text
    for text in entry['temporal']:
      assert colour_shape in text and re.search(cues[S.factors(c)[2]], text), text
  # The shared validator: within the tiny models' 16-token context; the only exact duplicates are the
  # twins' shared spatial texts (templated texts are near-duplicates by design, so that check is off).
  from msta_jax.models.tokenizer import Tokenizer
  tok = Tokenizer(16)
  problems = D.validate(descs, names, context_length=16, near_duplicate_threshold=1.01,
                        count_tokens=tok.count_tokens)
  assert problems and all(p.kind == 'spatial' and 'duplicates' in p.message for p in problems)
  for p in problems:
    first = re.search(r"duplicates '([^']+)'", p.message).group(1)
    assert S.twin(names.index(p.class_name)) == names.index(first), str(p)
  # Class prompts fit too.
  assert max(len(i) + 2 for i in tok.bpe_ids([f'a video of {n}.' for n in names])) <= 16


# --------------------------------------------------------------------------------------------------
# Composition groups and split plans.


@pytest.mark.parametrize('seed', range(40))
def test_composition_groups(seed):
  g = S.composition_groups(seed)
  every = set(range(S.NUM_COMPOSITIONS))
  colours = lambda cs: {c // 3 for c in cs}                       # noqa: E731
  shapes = lambda cs: sorted(c % 3 for c in cs)                   # noqa: E731
  assert len(g['pretrain']) == 8 and set(g['pretrain']) | set(g['held_out']) == every
  assert colours(g['held_out']) == set(range(4)) and set(shapes(g['held_out'])) == {0, 1, 2}
  for train, held in (('base', 'novel'), ('source', 'target')):
    assert len(g[train]) == len(g[held]) == 6
    assert not set(g[train]) & set(g[held]) and set(g[train]) | set(g[held]) == every
    assert set(g['held_out']) <= set(g[held])
    assert colours(g[train]) == set(range(4)) and shapes(g[train]) == [0, 0, 1, 1, 2, 2]
  assert g['novel'] != g['target']
  assert colours(g['pretrain']) == set(range(4)) and set(shapes(g['pretrain'])) == {0, 1, 2}


def test_split_plan_class_sets():
  p = S.plan(S.Spec())
  expected = ['pretrain'] + [f'few_shot_train_k{k}' for k in (2, 4, 8, 16, 32, 64)] + [
      'few_shot_val', 'few_shot_test', 'b2n_train', 'b2n_val', 'b2n_base_test', 'b2n_novel_test',
      'zs_train', 'zs_val', 'zs_test', 'sup_train', 'sup_val', 'sup_test']
  assert list(p) == expected
  g = S.composition_groups(0)
  assert set(p['b2n_train'].classes) == set(p['b2n_val'].classes) == set(p['b2n_base_test'].classes)
  assert set(p['b2n_novel_test'].classes) == set(S.classes_of(g['novel']))
  assert not set(p['b2n_novel_test'].classes) & set(p['b2n_train'].classes)
  assert set(p['zs_train'].classes) == set(p['zs_val'].classes) == set(S.classes_of(g['source']))
  assert not set(p['zs_test'].classes) & set(p['zs_train'].classes)
  for name in ('few_shot_test', 'sup_train', 'sup_test', 'few_shot_train_k16'):
    assert p[name].classes == tuple(range(96))
  for name, sp in p.items():
    assert set(sp.classes) == {S.twin(c) for c in sp.classes}, name          # twins together
    if sp.role == 'train':
      assert {S.factors(c)[2] for c in sp.classes} == set(range(8)), name   # every motion
  counts = {n: sp.num_examples for n, sp in p.items()}
  assert counts['pretrain'] == 64 * 188 and counts['few_shot_train_k64'] == 96 * 64
  assert counts['b2n_train'] == 48 * 16 and counts['zs_train'] == 48 * 64
  assert counts['few_shot_test'] == counts['sup_test'] == 96 * 16 and counts['zs_test'] == 48 * 16


def test_examples_local_labels_pairs_and_pools():
  plan = S.plan(SPEC)
  test_ids, val_ids, train_hashes = set(), set(), set()
  for name, sp in plan.items():
    ex = _arrays(name)
    assert len(ex['label']) == sp.num_examples, name
    assert np.bincount(ex['label'], minlength=len(sp.classes)).tolist() == [sp.per_class] * len(
        sp.classes)
    glob_cls = np.asarray(sp.classes)[ex['label']]
    np.testing.assert_array_equal(glob_cls, [S.class_id(*f) for f in zip(ex['colour'], ex['shape'],
                                                                            ex['motion'])])
    assert np.all(ex['clip_id'] // S.CLIP_POOL == sp.pool)
    if sp.paired:
      for i in range(0, len(ex['label']), 2):                 # canonical clip, then its reversal
        assert ex['clip_id'][i] == ex['clip_id'][i + 1] and ex['motion'][i] % 2 == 0
        assert glob_cls[i + 1] == S.twin(glob_cls[i])
        np.testing.assert_array_equal(ex['video'][i + 1], ex['video'][i][::-1])
      assert len(set(ex['clip_id'])) == len(ex['clip_id']) // 2
      (test_ids if sp.role == 'test' else val_ids).update(ex['clip_id'].tolist())
    else:
      assert len(set(ex['clip_id'])) == len(ex['clip_id'])
      train_hashes.update(hashlib.sha1(v.tobytes()).digest() for v in ex['video'])
    for video, cls in zip(ex['video'], glob_cls):
      assert _oracle_motion(video, S.factors(cls)[2] // 2) == S.factors(cls)[2]
  assert test_ids and val_ids and not test_ids & val_ids
  # No test or val clip is also a training clip (content, not just ids).
  for name in ('sup_test', 'sup_val'):
    assert not {hashlib.sha1(v.tobytes()).digest() for v in _arrays(name)['video']} & train_hashes
  # Test splits are views of one pool: a clip has the same pixels wherever it appears.
  full, base = _arrays('few_shot_test'), _arrays('b2n_base_test')
  by_id = {(i, m): v.tobytes() for i, m, v in zip(full['clip_id'], full['motion'], full['video'])}
  assert all(by_id[(i, m)] == v.tobytes() for i, m, v in zip(base['clip_id'], base['motion'],
                                                               base['video']))


def test_few_shot_sets_are_subsets_of_sup_train():
  spec = S.Spec(seed=0, **{**SMALL, 'few_shot_shots': (2, 4, 5), 'sup_train_per_class': 6})
  sup = S.arrays(spec, 'sup_train')
  pixels = {i: v.tobytes() for i, v in zip(sup['clip_id'], sup['video'])}
  chosen = {}
  for k in spec.few_shot_shots:
    fs = S.arrays(spec, f'few_shot_train_k{k}')
    assert np.bincount(fs['label']).tolist() == [k] * 96
    assert all(pixels[i] == v.tobytes() for i, v in zip(fs['clip_id'], fs['video']))
    chosen[k] = set(fs['clip_id'].tolist())
  assert not chosen[2] <= chosen[4]                           # independent draws, not nested
  with pytest.raises(ValueError, match='sup_train_per_class'):
    S.Spec(few_shot_shots=(2, 128))


def test_frame_averaging_scores_exactly_chance_on_test_pairs():
  """Any function of the frame average gives twins equal scores: pair accuracy is exactly 50%."""
  ex = _arrays('few_shot_test')
  labels = ex['label']
  twin = np.array([S.twin(c) for c in range(96)])           # full list: local == global
  feats = ex['video'].astype(np.float64).mean(axis=1).reshape(len(labels), -1)   # [N, S*S*3]
  rng = np.random.default_rng(0)
  for _ in range(3):
    w = rng.normal(size=(feats.shape[1], 96))
    logits = np.tanh(feats @ w / 100.0)
    true, other = logits[np.arange(len(labels)), labels], logits[np.arange(len(labels)), twin[labels]]
    assert np.mean((true > other) + 0.5 * (true == other)) == 0.5
  # ... while the order of frames does tell them apart: a first-vs-last-frame cue is always right.
  assert all(_oracle_motion(v, m // 2) == m for v, m in zip(ex['video'], ex['motion']))


# --------------------------------------------------------------------------------------------------
# Determinism.


def test_determinism():
  def digest(spec, split):
    h = hashlib.sha256()
    for e in S.examples(spec, split):
      h.update(e['video'].tobytes() + e['caption'].encode() + str(e['clip_id']).encode())
    return h.hexdigest()
  for split in ('b2n_train', 'zs_test'):
    assert digest(SPEC, split) == digest(S.Spec(seed=0, **SMALL), split)
    assert digest(SPEC, split) != digest(S.Spec(seed=1, **SMALL), split)
  assert S.composition_groups(0) == S.composition_groups(0) != S.composition_groups(1)
  # Resizing one split leaves the others' clips alone.
  other = S.Spec(seed=0, **{**SMALL, 'pretrain_per_class': 3})
  assert digest(SPEC, 'sup_test') == digest(other, 'sup_test')
  assert SPEC.name != other.name and SPEC.name != S.Spec(seed=1, **SMALL).name
  assert S.Spec().name == 'seed0' and S.Spec(seed=3).name == 'seed3'


def test_spec_validation():
  with pytest.raises(ValueError, match='frames'):
    S.Spec(frames=1)
  with pytest.raises(ValueError, match='test_per_class'):
    S.Spec(test_per_class=0)


# --------------------------------------------------------------------------------------------------
# TFDS build and read-back.


@pytest.fixture
def built(synthetic_small_build):
  return synthetic_small_build  # Built once per session (tests/conftest.py).


def test_png_encoder_is_lossless():
  from PIL import Image
  import tensorflow as tf
  from msta_jax.data.builders import synthetic as B
  video, _ = S.render(np.random.default_rng(0), 44, 1, 3, 20)
  video[0, 0, 0, 0] = (1, 2, 3)
  for frame, png in zip(video[0], B.encode_png(video[0])):
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)).convert('RGB')), frame)
    np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), frame)


def test_build_and_read_back(built):
  import tensorflow_datasets as tfds
  from msta_jax.data.builders import synthetic as B
  data_dir, builder = built
  path = os.path.join(data_dir, 'synthetic', SPEC.name, '1.0.0')
  assert builder.data_dir == path
  plan = S.plan(SPEC)
  assert {n: s.num_examples for n, s in builder.info.splits.items()} == {
      n: p.num_examples for n, p in plan.items()}
  assert glob.glob(os.path.join(path, '*.array_record*'))
  # The metadata, as a reader without the generator code sees it.
  ro = tfds.builder_from_directory(path)
  meta = dict(ro.info.metadata)
  assert meta['spec'] == SPEC.to_dict() and meta['frames'] == 8 and meta['size'] == 32
  assert meta['classes'] == S.class_names() and meta['descriptions'] == S.descriptions()
  assert meta['factors']['motions'] == list(S.MOTIONS)
  assert meta['groups']['novel'] == [S.composition_name(c) for c in S.composition_groups(0)['novel']]
  assert meta['protocols']['base_to_novel'] == {'train': ['b2n_train'], 'val': ['b2n_val'],
                                                'test': ['b2n_base_test', 'b2n_novel_test']}
  for name, sp in plan.items():
    m = meta['splits'][name]
    assert m['classes'] == [S.class_name(c) for c in sp.classes]
    assert m['class_list'] == sp.class_list and m['num_examples'] == sp.num_examples
    for i, (c, f) in enumerate(zip(sp.classes, m['factors'])):
      assert (f['colour'], f['shape'], f['motion']) == S.factors(c)
      assert m['classes'][f['twin']] == S.class_name(S.twin(c)) and m['factors'][f['twin']]['twin'] == i
  # Examples decode to exactly the generated clips (lossless), labels local to the split's list.
  want = {(int(i), int(m)): (v, int(l), str(c)) for i, m, v, l, c in zip(
      *(_arrays('zs_test')[k] for k in ('clip_id', 'motion', 'video', 'label', 'caption')))}
  got = list(ro.as_data_source('zs_test'))   # array_record: random access, decoded by TFDS
  assert len(got) == len(want)
  for e in got:
    video, label, caption = want[(int(e['clip_id']), int(e['motion']))]
    np.testing.assert_array_equal(e['video'], video)
    assert e['label'] == label and e['caption'].decode() == caption and e['path'] == b''
    assert e['orig_frames'] == 8 and e['fps'] == S.FPS
  # Building again only opens it; another seed lands elsewhere.
  assert B.build(data_dir, seed=0, **SMALL).data_dir == path
  assert B.builder(data_dir, seed=1, **SMALL).data_dir != path


def test_build_is_byte_identical(built, tmp_path):
  from msta_jax.data.builders import synthetic as B
  data_dir, first = built
  second = B.build(str(tmp_path), seed=0, **SMALL)

  def files(d):
    return {os.path.basename(f): hashlib.sha256(open(f, 'rb').read()).hexdigest()
            for f in glob.glob(os.path.join(d, '*.array_record*'))}
  assert files(first.data_dir) == files(second.data_dir) and files(first.data_dir)


def test_pipeline_opens_the_build(built):
  from msta_jax.data import pipeline
  data_dir, _ = built
  src = pipeline.open_split(data_dir, f'synthetic/{SPEC.name}', 'b2n_novel_test')
  assert len(src) == S.plan(SPEC)['b2n_novel_test'].num_examples
  assert src.classes == [S.class_name(c) for c in S.plan(SPEC)['b2n_novel_test'].classes]
  ex = pipeline.parse(src.source[0])
  assert len(ex['frames']) == 8 and 0 <= ex['label'] < len(src.classes)
