"""The input pipeline on a test-made dataset whose frames encode (clip, frame) in their pixels."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from msta_jax.data import features, pipeline, transforms

N, STORED = 21, 12
ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)


class PipeClips(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=features.features_dict('png', extra={'shape': np.int64}),
                                 metadata=tfds.core.MetadataDict(splits={
                                     'train': features.split_metadata(['a', 'b', 'c'], 'full', 'test'),
                                     'test': features.split_metadata(['a', 'b', 'c'], 'full', 'test')}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(), 'test': self._generate_examples()}

  def _generate_examples(self):
    for i in range(N):
      video = np.zeros((STORED, 16, 24, 3), np.uint8)
      video[..., 0] = i * 10          # Red channel: clip id.
      video[..., 1] = np.arange(STORED)[:, None, None] * 20  # Green channel: frame index.
      yield i, {'video': video, 'label': i % 3, 'path': f'clip{i}', 'fps': 10.0, 'orig_frames': STORED,
                'shape': i % 2}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('tfds'))
  PipeClips(data_dir=d, file_format='array_record').download_and_prepare()
  return d


CLIP = pipeline.ClipSpec(num_frames=4, image_size=8, mean=ZERO, std=ONE)
NO_AUG = transforms.Augment(crop_scale=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale=0.0)


def _ids(batch):
  """(clip id, frame indices) decoded from uint8 pixel values."""
  assert batch['video'].dtype == np.uint8
  clips = np.rint(batch['video'][..., 0].mean(axis=(-1, -2)) / 10).astype(int)
  frames = np.rint(batch['video'][..., 1].mean(axis=(-1, -2)) / 20).astype(int)
  return clips[:, 0], frames


def test_segment_sampling():
  np.testing.assert_array_equal(transforms.segment_indices(12, 4), [1, 4, 7, 10])  # midpoints
  rng = np.random.default_rng(0)
  idx = transforms.segment_indices(12, 4, rng=rng)
  assert all(3 * k <= i < 3 * (k + 1) for k, i in enumerate(idx))
  np.testing.assert_array_equal(transforms.segment_indices(2, 4), [0, 0, 1, 1])  # fewer stored frames


def test_split_source_and_metadata(data_dir):
  src = pipeline.open_split(data_dir, 'pipe_clips', 'train')
  assert len(src) == N and src.classes == ['a', 'b', 'c']
  with pytest.raises(pipeline.DatasetMissingError, match='no split'):
    pipeline.open_split(data_dir, 'pipe_clips', 'val')
  with pytest.raises(pipeline.DatasetMissingError, match='build it first'):
    pipeline.open_split(data_dir, 'absent', 'train')


def test_train_epoch_covers_each_process_slice_once(data_dir):
  src = pipeline.open_split(data_dir, 'pipe_clips', 'train')
  seen = []
  for p in range(2):
    loader = pipeline.TrainLoader(src, global_batch=4, clip=CLIP, augment=NO_AUG, seed=3, process_index=p,
                                  process_count=2)
    assert loader.steps_per_epoch == 5 and loader.local_batch == 2
    for _ in range(5):
      b = next(loader)
      clips, frames = _ids(b)
      assert b['video'].shape == (2, 4, 8, 8, 3) and (b['label'] == clips % 3).all()
      assert (frames // 3 == np.arange(4)).all()  # One random frame per segment of 3.
      seen.extend(clips.tolist())
  assert len(seen) == len(set(seen)) == 20  # Disjoint slices; one clip of 21 left for the next epoch.


def test_resume_is_exact_and_other_process_counts_restart_at_epoch(data_dir):
  src = pipeline.open_split(data_dir, 'pipe_clips', 'train')
  aug = transforms.Augment()  # Full augmentation: crops, flips, jitter must also resume exactly.
  make = lambda **kw: pipeline.TrainLoader(src, global_batch=4, clip=CLIP, augment=aug, seed=5, **kw)
  a = make()
  for _ in range(7):
    next(a)
  state = a.get_state()
  want = [next(a)['video'] for _ in range(3)]
  b = make()
  assert b.set_state(state) == 'data iterator restored exactly'
  for w in want:
    np.testing.assert_array_equal(next(b)['video'], w)
  c = make(process_index=0, process_count=2)
  note = c.set_state(state)
  assert 'restarts at the start of epoch 1' in note  # 7 batches of 4 = 28 clips > 21: epoch 1.


def test_eval_counts_every_clip_once_with_views(data_dir):
  src = pipeline.open_split(data_dir, 'pipe_clips', 'test')
  got = []
  for p in range(2):
    batches = list(pipeline.eval_batches(src, global_batch=4, clip=CLIP, clips=2, crops=3,
                                         process_index=p, process_count=2))
    assert len(batches) == 6  # ceil(ceil(21 / 2) / 2): both processes yield the same count.
    for b in batches:
      assert b['video'].shape == (2, 6, 4, 8, 8, 3) and b['video'].dtype == np.uint8
      for i, m, v in zip(b['index'], b['mask'], b['video']):
        if i < 0:
          assert m == 0
          continue
        got.append(int(i))
        frames = np.rint(v[..., 1].mean(axis=(-1, -2)) / 20).astype(int)
        np.testing.assert_array_equal(frames[:3], [[0, 3, 6, 9]] * 3)    # clip 1: 1/4 of each segment
        np.testing.assert_array_equal(frames[3:], [[2, 5, 8, 11]] * 3)   # clip 2: 3/4
  assert sorted(got) == list(range(N))


def test_worker_processes_give_the_same_batches_and_resume_exactly(data_dir):
  src = pipeline.open_split(data_dir, 'pipe_clips', 'train')
  make = lambda **kw: pipeline.TrainLoader(src, global_batch=4, clip=CLIP, augment=transforms.Augment(), seed=5,
                                           **kw)
  threads = make(num_threads=2)
  assert threads.video_dtype == np.uint8  # Every augmentation on: colour-jittered clips rounded to uint8.
  want = [next(threads)['video'] for _ in range(6)]
  threads.close()
  workers = make(num_threads=1, num_workers=2)
  for w in want[:3]:
    got = next(workers)['video']
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, w)
  state = workers.get_state()
  assert state['batches'] == 3
  workers.close()
  resumed = make()  # A worker state resumes without workers (tests/train: with them, after a SIGKILL).
  assert resumed.set_state(state) == 'data iterator restored exactly'
  for w in want[3:]:
    np.testing.assert_array_equal(next(resumed)['video'], w)
  resumed.close()


_WORKER_SCRIPT = '''
import multiprocessing, sys, time
from msta_jax.data import pipeline, transforms
src = pipeline.open_split(sys.argv[1], 'pipe_clips', 'train')
clip = pipeline.ClipSpec(num_frames=4, image_size=8, mean=(0.0,) * 3, std=(1.0,) * 3)
loader = pipeline.TrainLoader(src, global_batch=4, clip=clip, augment=transforms.Augment(), seed=0, num_workers=1)
next(loader)
print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
time.sleep(600)
'''


def test_worker_processes_die_with_a_killed_parent(data_dir):
  import os
  import subprocess
  import sys
  import time
  parent = subprocess.Popen([sys.executable, '-c', _WORKER_SCRIPT, data_dir], stdout=subprocess.PIPE, text=True)
  pids = [int(p) for p in parent.stdout.readline().split()]
  assert len(pids) == 1
  parent.kill()  # SIGKILL: no atexit, no daemon clean-up in the parent.
  parent.wait()

  def alive(pid):
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    return True
  deadline = time.time() + 20
  while any(alive(p) for p in pids) and time.time() < deadline:
    time.sleep(0.2)
  assert not any(alive(p) for p in pids)


def test_eval_views_follow_the_sampler_and_count_repeated_clips(data_dir):
  from msta_jax.data import test_sampling
  src = pipeline.open_split(data_dir, 'pipe_clips', 'test')
  for clips, repeated in ((2, 0), (4, 1)):  # 4 clips x 4 frames on 12 stored frames: offsets 0,1,1,2.
    b = next(pipeline.eval_batches(src, global_batch=4, clip=CLIP, clips=clips, crops=1))
    assert b['repeated_clips'].tolist() == [repeated] * 4
  b = next(pipeline.eval_batches(src, global_batch=4, clip=CLIP, clips=3, crops=1, sampler='vifi_multiview', seed=7))
  _, frames = _ids(b)
  for i, f in zip(b['index'], frames):
    want = test_sampling.clip_indices('vifi_multiview', STORED, 4, 3, seed=7, index=int(i))
    np.testing.assert_array_equal(f, np.stack(want))
    assert np.all((f >= np.arange(4) * 3) & (f < np.arange(4) * 3 + 3))
