"""Corrupt videos get the verdict that says what is wrong; a crashed or hung decoding worker costs only
its own file. Videos are encoded here with PyAV and corrupted deterministically."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from msta_jax.data import decode
from tests.data.decode_test import write_video


@pytest.fixture(scope='module')
def avi(tmp_path_factory) -> bytes:
  """2 s of MPEG-4 AVI, 64x96 at 15 fps: 30 frames, a keyframe (with its VOL header) every 12."""
  path = write_video(str(tmp_path_factory.mktemp('v') / 'base.avi'), frames=30, width=64, height=96, fps=15)
  with open(path, 'rb') as f:
    return f.read()


def _probe(tmp_path, name: str, data: bytes) -> decode.Verdict:
  path = str(tmp_path / name)
  with open(path, 'wb') as f:
    f.write(data)
  return decode.probe(path)


def test_a_flipped_bit_in_the_frame_size_is_rejected(tmp_path, avi):
  """One bit of the first VOL header makes the decoder emit 2112x96 frames until the next keyframe."""
  data = bytearray(avi)
  data[avi.index(b'\x00\x00\x01\x20') + 10] ^= 1 << 6
  v = _probe(tmp_path, 'vol.avi', bytes(data))
  assert (v.status, v.reason, v.frames) == ('rejected', 'frame_size', 12)
  assert v.detail == 'frame 12 is 64x96; the stream declares 2112x96'
  stored = decode.decode_for_storage(str(tmp_path / 'vol.avi'))
  assert stored.frames is None and stored.verdict.reason == 'frame_size'
  with pytest.raises(decode.VideoError, match='vol.avi: frame 12 is 64x96, frame 0 2112x96'):
    decode.read_video(str(tmp_path / 'vol.avi'))


def test_truncation_is_judged_against_the_stated_frame_count(tmp_path, avi):
  """Cut after 15 of 30 frames: the decoded frames end exactly 1.0 s early, which the old flat 1 s
  gap let through; half the stated frames are missing."""
  chunks = [i for i in range(len(avi)) if avi.startswith(b'00dc', i)][1:]  # The first is in the header.
  v = _probe(tmp_path, 'cut.avi', avi[:chunks[15]])
  assert (v.status, v.reason, v.frames, v.detail) == ('partial', 'ends_early', 15,
                                                      '15 frames of the 30 the stream states')
  whole = _probe(tmp_path, 'whole.avi', avi)
  assert (whole.status, whole.frames) == ('ok', 30)


def test_zeroed_blocks_and_splices_are_partial(tmp_path, avi):
  zeroed = bytearray(avi)
  zeroed[6000:6000 + 2048] = bytes(2048)
  v = _probe(tmp_path, 'zeroed.avi', bytes(zeroed))
  assert (v.status, v.reason, v.frames) == ('partial', 'ends_early', 12)
  other = write_video(str(tmp_path / 'noise.avi'), frames=30, width=64, height=96, fps=15, noise=True)
  with open(other, 'rb') as f:
    tail = f.read()
  v = _probe(tmp_path, 'splice.avi', avi[:len(avi) // 2] + tail[len(tail) // 2:])
  assert (v.status, v.reason) == ('partial', 'ends_early') and v.frames < 27


def test_unknown_codec_is_a_readable_verdict(tmp_path, avi):
  """A corrupt codec id leaves PyAV without a decoder (codec_context None): a verdict, not an
  AttributeError about 'thread_count'."""
  v = _probe(tmp_path, 'fourcc.avi', avi.replace(b'XVID', b'QQQQ').replace(b'xvid', b'qqqq'))
  assert (v.status, v.reason, v.detail) == (
      'rejected', 'unreadable', 'no decoder for its video stream (unknown or corrupt codec id)')
  with pytest.raises(decode.VideoError, match='fourcc.avi: no decodable video stream'):
    decode.read_video(str(tmp_path / 'fourcc.avi'))


def _store_or_misbehave(task):
  """A build task (imported by the spawned workers) that hangs on hang.avi and crashes on crash.avi."""
  name = os.path.basename(task[0])
  if name == 'hang.avi':
    time.sleep(3600)
  if name == 'crash.avi':
    os._exit(3)
  return decode.store_task(task)


def test_a_hung_or_crashed_worker_costs_only_its_own_video(tmp_path):
  opts = decode.StorageOptions(short_side=24)
  names = ['a.avi', 'hang.avi', 'b.avi', 'crash.avi', 'c.avi', 'd.avi', 'e.avi']
  for name in names:
    write_video(str(tmp_path / name), frames=10)
  tasks = [(str(tmp_path / n), n, i, opts) for i, n in enumerate(names)]
  with multiprocessing.get_context('spawn').Pool(2) as pool:
    assert pool.map(abs, [1, 2], chunksize=1) == [1, 2]  # Warm up the spawned workers (slow imports).
    start = time.monotonic()
    out = {r.key: r for r in decode.imap_bounded(pool, _store_or_misbehave, tasks, limit=4, timeout_s=8,
                                                 failed=decode.failed_store)}
    took = time.monotonic() - start
  assert sorted(out) == sorted(names)
  for name in ('a.avi', 'b.avi', 'c.avi', 'd.avi', 'e.avi'):  # Stored, though behind a hung worker.
    assert out[name].verdict.status == 'ok' and len(out[name].jpegs) == 10, out[name].verdict
  assert out['hang.avi'].verdict.detail == (
      'no result within 8 s: its decoding process hung and was killed')
  assert out['crash.avi'].verdict.reason == 'error' and out['crash.avi'].verdict.detail.endswith(') died')
  assert took < 120, took  # The hung task's own 8 s (plus a loaded machine), not RESULT_TIMEOUT_S.
