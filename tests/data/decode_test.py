"""Tests for msta_jax.data.decode on small real videos written here with PyAV's encoders.

`write_video` and `write_broken` are shared with build_test.py and probe_test.py.
"""
from __future__ import annotations

import fractions
import multiprocessing
import os
import re

import av
import numpy as np
import pytest

from msta_jax.data import decode

# container extension -> (codec, codec tag): the formats the datasets ship.
FORMATS = {'avi': ('mpeg4', 'XVID'), 'mp4': ('libx264', None), 'webm': ('libvpx-vp9', None),
           'mkv': ('libx264', None)}


def gray(i: int) -> int:
  """The grey level of frame i: frames are told apart after lossy coding by their mean."""
  return (20 + 10 * i) % 240


def write_video(path: str, frames: int = 20, width: int = 64, height: int = 48, fps: int = 10, *,
                times: list[float] | None = None, rotation: int | None = None, noise: bool = False,
                seed: int = 0) -> str:
  """Writes a video whose format follows the extension. Frame i is flat grey `gray(i)` with a white
  block at the top left (or random noise, which compresses badly: truncation then cuts frames).
  `times` (seconds) makes a variable-frame-rate file; `rotation` sets a display matrix."""
  codec, tag = FORMATS[path.rsplit('.', 1)[-1]]
  rng = np.random.default_rng(seed)
  with av.open(path, 'w') as c:
    s = c.add_stream(codec, rate=None if times else fps)
    s.width, s.height, s.pix_fmt = width, height, 'yuv420p'
    if tag:
      s.codec_tag, s.bit_rate = tag, 2_000_000  # mpeg4's default rate blurs the grey levels by ~7.
    if times:
      s.codec_context.time_base = s.time_base = fractions.Fraction(1, 1000)
    if rotation is not None:
      s.set_display_rotation(rotation)
    for i in range(len(times) if times else frames):
      img = np.full((height, width, 3), gray(i), np.uint8)
      img[:height // 4, :width // 4] = 255
      if noise:
        img = rng.integers(0, 256, img.shape, dtype=np.uint8)
      frame = av.VideoFrame.from_ndarray(img, format='rgb24')
      if times:
        frame.pts, frame.time_base = round(times[i] * 1000), fractions.Fraction(1, 1000)
      for p in s.encode(frame):
        c.mux(p)
    for p in s.encode():
      c.mux(p)
  return path


def write_broken(directory: str) -> dict[str, tuple[str, str]]:
  """The broken files every test set holds: {name: (status, reason)} as probe must judge them."""
  d = lambda name: os.path.join(directory, name)
  open(d('zero.avi'), 'wb').close()
  with open(d('random.mp4'), 'wb') as f:
    f.write(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes())
  with av.open(d('audio.mp4'), 'w') as c:  # Audio only: opens fine, has no video stream.
    s = c.add_stream('aac', rate=8000)
    for i in range(8):
      frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='fltp', layout='mono')
      frame.sample_rate, frame.pts = 8000, i * 1024
      for p in s.encode(frame):
        c.mux(p)
    for p in s.encode():
      c.mux(p)
  write_video(d('one.mp4'), frames=1)
  for name in ('cut.mkv', 'cut.mp4'):  # 3 s of noise, cut at 60%: MKV decodes 1.7 s, MP4 loses its index.
    write_video(d(name), frames=30, noise=True)
    with open(d(name), 'rb') as f:
      data = f.read()
    with open(d(name), 'wb') as f:
      f.write(data[:len(data) * 6 // 10])
  return {'zero.avi': ('rejected', 'empty'), 'random.mp4': ('rejected', 'unreadable'),
          'audio.mp4': ('rejected', 'no_video_stream'), 'one.mp4': ('rejected', 'too_short'),
          'cut.mkv': ('partial', 'ends_early'), 'cut.mp4': ('rejected', 'unreadable')}


@pytest.mark.parametrize('ext', sorted(FORMATS))
def test_formats_probe_ok_and_store_resized(tmp_path, ext):
  path = write_video(str(tmp_path / f'v.{ext}'), frames=20, fps=10)
  v = decode.probe(path)
  assert (v.status, v.reason, v.frames) == ('ok', '', 20)
  assert v.fps == pytest.approx(10.0) and v.duration == pytest.approx(2.0, abs=0.05)
  d = decode.decode_for_storage(path, decode.StorageOptions(short_side=24, max_frames=64))
  assert d.frames.shape == (20, 24, 32, 3) and d.frames.dtype == np.uint8
  assert (d.orig_frames, d.fps) == (20, pytest.approx(10.0))
  means = d.frames[:, 12:, 8:].mean(axis=(1, 2, 3))  # Below the white block.
  np.testing.assert_allclose(means, [gray(i) for i in range(20)], atol=4)
  np.testing.assert_array_equal(decode.read_video(path, max_frames=5).shape, (5, 48, 64, 3))


def test_portrait_and_display_rotation(tmp_path):
  portrait = decode.decode_for_storage(write_video(str(tmp_path / 'p.mp4'), width=48, height=64),
                                       decode.StorageOptions(short_side=24))
  assert portrait.frames.shape == (20, 32, 24, 3)
  # A phone video: landscape pixels, rotated 90 degrees counter-clockwise for display.
  rotated = decode.decode_for_storage(write_video(str(tmp_path / 'r.mp4'), rotation=90),
                                      decode.StorageOptions(short_side=24))
  img = rotated.frames[0]
  assert img.shape == (32, 24, 3)
  white = np.argwhere(img.min(axis=-1) > 200)
  # The block at the top left of the coded picture is at the bottom left once rotated.
  assert white[:, 0].min() >= 32 - 8 - 1 and white[:, 1].max() <= 6


def test_never_upscales():
  assert decode.output_size(64, 48, 256) == (64, 48)
  assert decode.output_size(64, 48, 24) == (32, 24)
  assert decode.output_size(45, 90, 30) == (30, 60)
  assert decode.output_size(64, 48, None) == (64, 48)


def test_variable_frame_rate_picks_evenly_spaced_times(tmp_path):
  # 11 frames 50 ms apart, then 9 frames 200 ms apart: 2.3 s.
  times = [0.05 * i for i in range(11)] + [0.5 + 0.2 * i for i in range(1, 10)]
  path = write_video(str(tmp_path / 'vfr.mkv'), times=times)
  v = decode.probe(path)
  assert (v.status, v.frames) == ('ok', 20) and v.fps == pytest.approx(19 / 2.3)
  d = decode.decode_for_storage(path, decode.StorageOptions(short_side=None, max_frames=6))
  # The buffer keeps frames 0,2,..,18 and the last (19); the frames nearest 0, .46, .92, 1.38, 1.84,
  # 2.3 s are 0 (0 s), 10 (.5), 12 (.9), 14 (1.3), 16 (1.7), 19 (2.3).
  means = d.frames[:, 12:, 16:].mean(axis=(1, 2, 3))
  np.testing.assert_allclose(means, [gray(i) for i in (0, 10, 12, 14, 16, 19)], atol=4)
  assert (d.orig_frames, d.fps) == (20, pytest.approx(5 / 2.3))


def test_keeper_memory_is_bounded_and_picks_evenly():
  converted = []
  keeper = decode._Keeper(8, lambda f: converted.append(f) or np.full((1, 1, 3), f % 256, np.uint8))
  peak = 0
  for i in range(10_000):
    keeper.offer(i, i / 25)
    peak = max(peak, len(keeper.items))
  frames, times = keeper.select()
  # Held: under 2 * cap. Converted: 2 * cap, then cap per doubling (log2(10000 / 16) ~ 9.3 of them).
  assert peak < 16 and len(converted) <= 16 + 8 * 10
  np.testing.assert_allclose(times, np.linspace(0, 9999 / 25, 8), atol=512 / 25)
  assert times[0] == 0 and times[-1] == 9999 / 25 and frames.shape == (8, 1, 1, 3)


def test_target_fps_and_max_frames(tmp_path):
  path = write_video(str(tmp_path / 'v.webm'), frames=30, fps=10)
  d = decode.decode_for_storage(path, decode.StorageOptions(short_side=24, target_fps=5))
  assert d.frames.shape[0] == 15 and d.fps == pytest.approx(5.0) and d.orig_frames == 30
  d = decode.decode_for_storage(path, decode.StorageOptions(short_side=24, max_frames=4))
  means = d.frames[:, 12:, 8:].mean(axis=(1, 2, 3))
  # Buffer 0, 8, 16, 24 and the last, 29; nearest to 0, .97, 1.93, 2.9 s: 0, 8 (.8), 16 (1.6), 29.
  np.testing.assert_allclose(means, [gray(i) for i in (0, 8, 16, 29)], atol=4)
  assert d.fps == pytest.approx(3 / 2.9)


def test_broken_files_get_their_verdicts(tmp_path):
  expected = write_broken(str(tmp_path))
  for name, (status, reason) in expected.items():
    v = decode.probe(str(tmp_path / name))
    assert (v.status, v.reason) == (status, reason), (name, v)
  assert decode.probe(str(tmp_path / 'one.mp4')).frames == 1
  cut = decode.probe(str(tmp_path / 'cut.mkv'))
  assert cut.frames == 17 and cut.detail == 'frames end at 1.70 s of 3.00 s'
  assert decode.probe(str(tmp_path / 'absent.avi')).reason == 'missing'
  d = decode.decode_for_storage(str(tmp_path / 'random.mp4'))
  assert d.frames is None and d.verdict.reason == 'unreadable'
  with pytest.raises(decode.VideoError, match='zero.avi: cannot open'):
    decode.read_video(str(tmp_path / 'zero.avi'))


def test_judge_decoder_errors_and_short_gaps():
  scan = decode._Scan(frames=12, first_t=0.0, last_t=1.1, error='Invalid data found')
  v = decode._judge('x.mp4', scan, 0.0, 3.0, 10.0, 8)
  assert (v.status, v.reason, v.frames) == ('partial', 'decode_error', 12)
  assert v.detail == 'decoder raised after 12 frames: Invalid data found'
  scan.error = None  # 1.8 s missing of 3 s: more than max(1 s, 10%).
  assert decode._judge('x.mp4', scan, 0.0, 3.0, 10.0, 8).reason == 'ends_early'
  # A 0.5 s shortfall (an audio track outlasting the video) is no truncation.
  assert decode._judge('x.mp4', scan, 0.0, 1.7, 10.0, 8).status == 'ok'
  assert decode._judge('x.mp4', scan, 0.0, 1.7, 10.0, 13).reason == 'too_short'
  assert decode._judge('x.mp4', decode._Scan(error='boom'), None, None, None, 8).reason == 'no_frames'


def test_store_task_encodes_only_what_is_stored(tmp_path):
  expected = write_broken(str(tmp_path))
  write_video(str(tmp_path / 'ok.avi'))
  opts = decode.StorageOptions(short_side=24)
  ok = decode.store_task((str(tmp_path / 'ok.avi'), 'ok.avi', 3, opts))
  assert ok.jpegs[0][:2] == b'\xff\xd8' and len(ok.jpegs) == 20 and ok.shape == (20, 24, 32, 3)
  assert (ok.key, ok.label, ok.orig_frames) == ('ok.avi', 3, 20)
  assert decode.store_task((str(tmp_path / 'cut.mkv'), 'cut.mkv', 0, opts)).jpegs is None
  kept = decode.store_task((str(tmp_path / 'cut.mkv'), 'cut.mkv', 0,
                            decode.StorageOptions(short_side=24, keep_partial=True)))
  assert kept.verdict.status == 'partial' and len(kept.jpegs) == 17
  assert decode.summarize(decode.probe(str(tmp_path / n)) for n in expected) == {
      'ok': {}, 'partial': {'ends_early': 1},
      'rejected': {'empty': 1, 'no_video_stream': 1, 'too_short': 1, 'unreadable': 2}}


def _die_on_three(x: int) -> int:
  """A pool task (imported by the spawned workers): 3 kills its process, 4 raises."""
  if x == 3:
    os._exit(1)
  if x == 4:
    raise ValueError('four')
  return 10 * x


def test_imap_bounded_survives_a_dead_worker_and_a_raising_task():
  with multiprocessing.get_context('spawn').Pool(2) as pool:
    # Spawned workers import this module on first use; on a loaded machine that alone can take
    # seconds, so warm them up before the part whose timeout is measured.
    assert pool.map(_die_on_three, [0, 1, 2, 5], chunksize=1) == [0, 10, 20, 50]
    out = list(decode.imap_bounded(pool, _die_on_three, range(8), limit=3, timeout_s=10,
                                   failed=lambda task, why: (task, why)))
  assert sorted(o for o in out if isinstance(o, int)) == [0, 10, 20, 50, 60, 70]
  failures = dict(o for o in out if isinstance(o, tuple))
  assert sorted(failures) == [3, 4] and failures[4] == 'ValueError: four'
  assert re.fullmatch(r'its decoding process \(pid \d+\) died', failures[3]), failures[3]
  assert decode.failed_store(('/v/x.avi', 'x.avi', 2, decode.StorageOptions()), 'why').verdict == (
      decode.Verdict('/v/x.avi', 'rejected', 'error', detail='why'))
