"""Bad data at training time (docs/reliability.md): a record whose frames do not decode, a missing or
corrupt array_record shard. 'error' names the file and the example; 'skip' replaces the record
deterministically, counts it in results.json, and a SIGKILLed and resumed run ends byte-identical.

The dataset is the tiny synthetic set, built once; two records of its training split (one fed before
the resumed checkpoint, one after) get frames that are not images.
"""
import json
import os
import shutil
import subprocess
import sys

import grain
import numpy as np
import pytest
from array_record.python import array_record_module
from tensorflow.core.example import example_pb2

from configs import tiny
from msta_jax.data import bad_records
from msta_jax.data import pipeline
from msta_jax.data import prepare
from msta_jax.data import transforms
from msta_jax.train import faults

SMALL = 'val_per_class=1,test_per_class=1,pretrain_per_class=1'
BATCH = 16
# Positions in the seed-0 training order of the two corrupted records: step 1 and step 9 (of 12).
POSITIONS = (5, 8 * BATCH + 3)
CLIP = pipeline.ClipSpec(num_frames=8, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)


def _data_cfg(data_dir):
  d = tiny.get_config('shots=2').data
  d.data_dir, d.generator_args = data_dir, SMALL
  return d


def _open(data_dir, split=None):
  d = _data_cfg(data_dir)
  return pipeline.open_split(data_dir, prepare.dataset_name(d), split or d.train_split)


def _rewrite(shard: str, change: dict[int, bytes]) -> None:
  """Rewrites an array_record shard (as TFDS writes them: group_size 1) with some records replaced."""
  reader = array_record_module.ArrayRecordReader(shard)
  records = [change.get(i, r) for i, r in enumerate(reader.read_all())]
  reader.close()
  writer = array_record_module.ArrayRecordWriter(shard, 'group_size:1')
  for r in records:
    writer.write(r)
  writer.close()


def _not_images(record: bytes) -> bytes:
  ex = example_pb2.Example.FromString(record)
  frames = ex.features.feature['video'].bytes_list.value
  for i in range(len(frames)):
    frames[i] = b'not an image %d' % i
  return ex.SerializeToString()


@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('clean'))
  prepare.ensure(_data_cfg(data_dir))
  return data_dir


@pytest.fixture(scope='module')
def corrupt(clean_dir, tmp_path_factory):
  """A copy of the dataset with the records at POSITIONS of the training order undecodable; returns
  (data_dir, their storage indices)."""
  data_dir = str(tmp_path_factory.mktemp('corrupt'))
  shutil.copytree(clean_dir, data_dir, dirs_exist_ok=True)
  src = _open(data_dir)
  order = grain.MapDataset.range(len(src)).seed(0).shuffle()
  bad = [int(order[p]) for p in POSITIONS]
  by_shard: dict[str, dict[int, bytes]] = {}
  for i in bad:
    shard, position = bad_records.shard_of(src.source, i)
    by_shard.setdefault(shard, {})[position] = _not_images(src.source[i])
  for shard, change in by_shard.items():
    _rewrite(shard, change)
  return data_dir, bad


def _loader(src, mode='error', **kw):
  return pipeline.TrainLoader(src, global_batch=BATCH, clip=CLIP, augment=transforms.Augment(), seed=0,
                              num_threads=2, bad_records=mode, **kw)


def _epoch(loader, n=None):
  try:
    return [next(loader) for _ in range(n or loader.steps_per_epoch)]
  finally:
    loader.close()


def test_default_path_reads_the_records_as_before(clean_dir):
  """The loader now maps storage indices (to name or replace a record); its batches are those of the
  record-mapping pipeline it replaced (as TrainLoader built it: sliced per process), bit for bit (same shuffle, same per-position draws)."""
  src = _open(clean_dir)
  t = pipeline._TrainTransform(CLIP, transforms.Augment(), None, src)
  old = (grain.MapDataset.source(src.source).seed(0).shuffle().repeat(None)[0::1]
         .random_map(lambda record, rng: t._example((-1, record), rng, {})).batch(BATCH, drop_remainder=True))
  new = _epoch(_loader(src), 3)
  for b, batch in enumerate(new):
    assert sorted(batch) == sorted(old[b])
    for k in batch:
      np.testing.assert_array_equal(batch[k], old[b][k], err_msg=k)


@pytest.mark.parametrize('workers', [0, 1])
def test_error_mode_names_the_shard_and_the_example(corrupt, workers):
  data_dir, bad = corrupt
  src = _open(data_dir)
  shard, position = bad_records.shard_of(src.source, bad[0])
  with pytest.raises(Exception) as e:
    _epoch(_loader(src, num_workers=workers))
  text = str(e.value)
  assert f"split 'few_shot_train_k2' example {bad[0]}" in text and f'shard {shard} record {position}' in text
  assert 'UnidentifiedImageError' in text
  if not workers:
    assert isinstance(e.value, bad_records.BadRecordError)


def test_skip_mode_replaces_with_the_next_good_record_deterministically(corrupt, clean_dir):
  data_dir, bad = corrupt
  src = _open(data_dir)
  batches = _epoch(_loader(src, 'skip'))
  loader = _loader(src, 'skip')
  _epoch(loader)
  assert loader.get_state()['bad_records'] == [[bad[0], bad[0] + 1], [bad[1], bad[1] + 1]]
  assert all(bad_records.REPLACED not in b for b in batches)
  # Only the two replaced clips differ from the clean set's epoch.
  clean = _epoch(_loader(_open(clean_dir)))
  for p in POSITIONS:
    b, r = divmod(p, BATCH)
    assert not np.array_equal(batches[b]['video'][r], clean[b]['video'][r])
  same = [np.array_equal(x['video'], y['video']) for x, y in zip(batches, clean)]
  assert same == [b not in (0, 8) for b in range(len(batches))]
  # Resuming after batch 3 replays the rest exactly, the first replacement already counted.
  resumed = _loader(src, 'skip')
  state = dict(loader.get_state(), batches=4, bad_records=[[bad[0], bad[0] + 1]])
  resumed.set_state(state)
  rest = _epoch(resumed, len(batches) - 4)
  for x, y in zip(rest, batches[4:]):
    np.testing.assert_array_equal(x['video'], y['video'])
  assert resumed.get_state()['bad_records'] == [[bad[0], bad[0] + 1], [bad[1], bad[1] + 1]]


def test_missing_or_corrupt_shard_is_named(clean_dir, tmp_path):
  data_dir = str(tmp_path / 'data')
  shutil.copytree(clean_dir, data_dir)
  shards = bad_records.shard_files(_open(data_dir).source)
  with open(shards[0], 'wb') as f:
    f.write(b'\x00garbage' * 100)
  with pytest.raises(bad_records.BadRecordError, match=f'in shard {shards[0]} record'):
    _epoch(_loader(_open(data_dir)), 1)
  os.remove(shards[0])
  with pytest.raises(FileNotFoundError, match=f'shard {shards[0]} is missing'):
    _open(data_dir)


def _run(workdir, data_dir, fault=''):
  cmd = [sys.executable, '-m', 'msta_jax.main', '--config=configs/tiny.py:shots=2', f'--workdir={workdir}',
         f'--config.data.data_dir={data_dir}', f'--config.data.generator_args={SMALL}',
         f'--config.batch_size={BATCH}', '--config.eval.batch_size=16', '--config.optim.epochs=1',
         '--config.eval.every_epochs=1', '--config.checkpoint.every_steps=4', '--config.data.bad_records=skip',
         '--config.checkpoint.async_save=False']  # Synchronous saves: step 4 is committed when step 6 ends.
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1', **{faults.ENV: fault})
  return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_skip_mode_run_counts_and_resumes_byte_identical(corrupt, tmp_path):
  data_dir, bad = corrupt
  ref, killed = tmp_path / 'ref', tmp_path / 'killed'
  out = _run(ref, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  out = _run(killed, data_dir, 'kill_after_step:6')
  assert out.returncode == -9, out.stderr[-3000:]
  # The restart resumes from step 4: the first replacement (step 1) comes from the checkpoint's data
  # state, the second (step 9) is made again after it.
  assert sorted(os.listdir(killed / 'checkpoints')) == ['4']
  out = _run(killed, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  assert (ref / 'adapters.safetensors').read_bytes() == (killed / 'adapters.safetensors').read_bytes()
  ra, rb = (json.loads((w / 'results.json').read_text()) for w in (ref, killed))
  assert ra['bad_records'] == rb['bad_records']
  assert ra['bad_records']['mode'] == 'skip' and ra['bad_records']['skipped'] == 2
  assert [(e['index'], e['replaced_by']) for e in ra['bad_records']['examples']] == [(i, i + 1) for i in bad]
  assert all(e['shard'].startswith(str(data_dir)) for e in ra['bad_records']['examples'])
  assert ra['test'] == rb['test']
