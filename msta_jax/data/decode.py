"""Video decoding with PyAV (bundled codecs; no ffmpeg binary needed): reading, probing, storage.

Three entry points share one decoding loop (`_scan`), so a probe and a build judge a file the same way:

  read_video(path, max_frames)        every frame (or the first max_frames), full size, for tools.
  probe(path) -> Verdict              decode everything, keep nothing: is the file usable?
  decode_for_storage(path, options)   bounded memory: resize and subsample while streaming.

Builds run `store_task` (decode, then JPEG) in spawned worker processes through `imap_bounded`; both live
here because a worker imports only this module (no TensorFlow).

Verdicts. A file is `rejected` (never stored) when it is missing, empty, cannot be opened or has no
decoder (`unreadable`), has no video stream, yields no frame or fewer than `min_frames`, or decodes to a
frame whose size is not the one its stream declares (`frame_size`: corrupt headers decode to garbage of
another size, e.g. 2112x96 frames from a 64x96 MPEG-4 stream with one flipped bit); `partial` when the
decoder raised after some frames (`decode_error`) or when the file holds fewer frames than it says
(`ends_early`: a decoder may stop, or skip frames, silently on corrupt data). The expected frame count
is the stream's own (its header count, or its duration times its rate): more than PARTIAL_FRAME_FRAC of
it missing is `ends_early`. Only a file whose stream states neither falls back to the container's
duration, with a tolerance for audio outlasting the video (max(PARTIAL_GAP_S, PARTIAL_GAP_FRAC of it)).
Lengths come from timestamps, never from the container's frame count alone (variable frame rate files
have none they can trust), except for AVI: it stores no timestamps and a truncated AVI's index shrinks
with the file, so its header frame count is the only length it has.
"""
from __future__ import annotations

import dataclasses
import io
import itertools
import os
import queue
import shutil
import signal
import tempfile
import time
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import numpy as np
from PIL import Image

from msta_jax import files

OK, PARTIAL, REJECTED = 'ok', 'partial', 'rejected'
# Reasons, stable strings (reports are grepped and counted by them).
REASONS = {
    REJECTED: ('missing', 'empty', 'unreadable', 'no_video_stream', 'no_frames', 'too_short', 'frame_size',
               'error'),
    PARTIAL: ('decode_error', 'ends_early'),
}
# The training pipeline samples 8 segments: a video with fewer frames than that cannot fill them.
MIN_FRAMES = 8
# `ends_early` when more than this fraction of the frames the stream states (and at least 2) are missing.
PARTIAL_FRAME_FRAC = 0.1
# Without a stream-level length: `ends_early` when the decoded frames stop more than max(1 s, 10% of the
# container's duration) before its end. Audio tracks often outlast the video by a fraction of a second,
# which must not count as truncation.
PARTIAL_GAP_S = 1.0
PARTIAL_GAP_FRAC = 0.1
# A pool gives up on a video (rejected, `error`) when its task has run this long (the worker is killed
# and replaced) or its worker died. Dataset clips decode in seconds; raise it for hour-long videos.
RESULT_TIMEOUT_S = 900.0
VIDEO_EXTENSIONS = ('.avi', '.mp4', '.m4v', '.mkv', '.webm', '.mov', '.mpg', '.mpeg', '.flv', '.wmv',
                    '.3gp', '.ogv', '.ts')


class VideoError(ValueError):
  """A video cannot be decoded; the message names the file and the reason."""


def read_video(path: str, max_frames: int | None = None) -> np.ndarray:
  """Decodes the first video stream of `path` to RGB frames uint8 [T, H, W, 3]."""
  import av  # Lazy: PyAV (FFmpeg) only where videos are decoded, never on the model or train path.
  try:
    container = av.open(path)
  except Exception as e:  # FFmpegError, OSError, UnicodeDecodeError of broken metadata, ...
    raise VideoError(f'{path}: cannot open ({_brief(e)})') from e
  with container:
    if not container.streams.video or container.streams.video[0].codec_context is None:
      raise VideoError(f'{path}: no decodable video stream')
    frames = []
    try:
      for frame in container.decode(video=0):
        frames.append(frame.to_ndarray(format='rgb24'))
        if max_frames is not None and len(frames) >= max_frames:
          break
        if frames[-1].shape != frames[0].shape:
          raise VideoError(f'{path}: frame {len(frames) - 1} is {frame.width}x{frame.height}, frame 0 '
                           f'{frames[0].shape[1]}x{frames[0].shape[0]}')
    except (av.error.FFmpegError, ValueError, TypeError) as e:
      if isinstance(e, VideoError):
        raise
      if not frames:
        raise VideoError(f'{path}: decoding failed before the first frame ({_brief(e)})') from e
  if not frames:
    raise VideoError(f'{path}: no decodable frames')
  return np.stack(frames)


# ---------------------------------------------------------------------------------------------------
# Verdicts.


@dataclasses.dataclass(frozen=True)
class Verdict:
  """What a full decode found. `frames` counts decoded frames; `duration` is the stream's claimed length
  in seconds (None if unknown); `fps` the measured mean rate of the decoded frames."""
  path: str
  status: str  # OK, PARTIAL or REJECTED.
  reason: str = ''  # One of REASONS[status]; '' when ok.
  frames: int = 0
  duration: float | None = None
  fps: float | None = None
  detail: str = ''  # Human explanation (numbers, the decoder's message).

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def _rejected(path: str, reason: str, detail: str, frames: int = 0) -> Verdict:
  return Verdict(path, REJECTED, reason, frames, detail=detail)


@dataclasses.dataclass
class _Scan:
  """Running state of one decode: counts and timestamps, so nothing but the kept frames is stored."""
  frames: int = 0
  first_t: float | None = None
  last_t: float | None = None
  error: str | None = None
  bad_size: str | None = None  # Set when a frame's size is not the declared one; decoding stops there.


def _expected_end(container: Any, stream: Any) -> tuple[float | None, float | None, int | None]:
  """(start, duration) in seconds that the file claims for its video, from the stream if it says, else
  from the container; AVI also from its header frame count (see module docstring). Third: the frame
  count the stream itself states (header count, else its duration times its rate), None if it states
  neither."""
  start = duration = expected = None
  rate = float(stream.average_rate) if stream.average_rate else None
  if stream.start_time is not None:
    start = float(stream.start_time * stream.time_base)
  elif container.start_time is not None:
    start = container.start_time / 1e6
  if stream.duration is not None:
    duration = float(stream.duration * stream.time_base)
    expected = round(duration * rate) if rate else None
  elif container.duration is not None:
    duration = container.duration / 1e6
  if stream.frames:
    expected = int(stream.frames)
  if container.format.name == 'avi' and stream.frames and rate:
    duration = max(duration or 0.0, stream.frames / rate)
  return start, duration, expected


def _scan(path: str, min_frames: int, on_frame: Callable[[Any, int, float], None] | None = None,
          threads: int = 1) -> Verdict:
  """Decodes the first video stream of `path`, calling on_frame(frame, index, time) for each frame.

  Never raises for a bad file: every failure becomes a Verdict. A timestamp that is missing or not after
  the previous one (broken files) continues from the previous one at the stream's nominal rate, so the
  times handed on always increase.
  """
  import av  # Lazy: PyAV only where videos are decoded.
  if not os.path.exists(path):
    return _rejected(path, 'missing', 'no such file')
  if os.path.getsize(path) == 0:
    return _rejected(path, 'empty', '0 bytes')
  try:
    container = av.open(path)
  except Exception as e:  # FFmpegError, OSError, UnicodeDecodeError of broken metadata, ...
    return _rejected(path, 'unreadable', f'cannot open: {_brief(e)}')
  with container:
    if not container.streams.video:
      kinds = sorted({s.type for s in container.streams}) or ['none']
      return _rejected(path, 'no_video_stream', f'streams: {", ".join(kinds)}')
    stream = container.streams.video[0]
    if stream.codec_context is None:
      return _rejected(path, 'unreadable', 'no decoder for its video stream (unknown or corrupt codec id)')
    stream.codec_context.thread_count = threads  # Builds run one process per core.
    declared = (stream.codec_context.width, stream.codec_context.height)
    rate = float(stream.average_rate or stream.guessed_rate or 0) or None
    scan = _Scan()
    try:
      for frame in container.decode(stream):
        if declared[0] <= 0 or declared[1] <= 0:
          declared = (frame.width, frame.height)  # Nothing declared: the first frame's size is the size.
        if (frame.width, frame.height) != declared:
          scan.bad_size = (f'frame {scan.frames} is {frame.width}x{frame.height}; the stream declares '
                           f'{declared[0]}x{declared[1]}')
          break
        t = frame.time
        if scan.last_t is not None and (t is None or t <= scan.last_t):
          t = scan.last_t + 1.0 / (rate or 25.0)
        elif t is None:
          t = 0.0
        if on_frame is not None:
          on_frame(frame, scan.frames, t)
        scan.frames += 1
        scan.first_t = t if scan.first_t is None else scan.first_t
        scan.last_t = t
    except av.error.FFmpegError as e:
      scan.error = str(e)
    except (ValueError, TypeError, AttributeError, IndexError) as e:  # PyAV on broken side data.
      scan.error = _brief(e)
    start, duration, expected = _expected_end(container, stream)
  return _judge(path, scan, start, duration, rate, min_frames, expected)


def _brief(e: BaseException, limit: int = 300) -> str:
  text = f'{type(e).__name__}: {e}'
  return text if len(text) <= limit else text[:limit] + '...'


def _judge(path: str, scan: _Scan, start: float | None, duration: float | None, rate: float | None,
           min_frames: int, expected: int | None = None) -> Verdict:
  n = scan.frames
  if scan.bad_size:
    return _rejected(path, 'frame_size', scan.bad_size, n)
  if n == 0:
    why = f'decoder failed before the first frame: {scan.error}' if scan.error else 'no frame decoded'
    return _rejected(path, 'no_frames', why)
  span = scan.last_t - scan.first_t
  fps = (n - 1) / span if n > 1 and span > 0 else rate
  if n < min_frames:
    return dataclasses.replace(_rejected(path, 'too_short', f'{n} frames, fewer than min_frames='
                                         f'{min_frames}', n), duration=duration, fps=fps)
  ok = Verdict(path, OK, '', n, duration, fps)
  if scan.error:
    return dataclasses.replace(ok, status=PARTIAL, reason='decode_error',
                               detail=f'decoder raised after {n} frames: {scan.error}')
  if expected:
    if expected - n >= 2 and n < (1 - PARTIAL_FRAME_FRAC) * expected:
      return dataclasses.replace(ok, status=PARTIAL, reason='ends_early',
                                 detail=f'{n} frames of the {expected} the stream states')
  elif duration:
    start = scan.first_t if start is None else start
    end = scan.last_t + (1.0 / fps if fps else 0.0)  # The last frame lasts one frame interval.
    gap = start + duration - end
    if gap > max(PARTIAL_GAP_S, PARTIAL_GAP_FRAC * duration):
      return dataclasses.replace(ok, status=PARTIAL, reason='ends_early',
                                 detail=f'frames end at {end - start:.2f} s of {duration:.2f} s')
  return ok


def probe(path: str, min_frames: int = MIN_FRAMES, threads: int = 1) -> Verdict:
  """Decodes all of `path` without keeping frames and judges it (see module docstring)."""
  try:
    return _scan(path, min_frames, threads=threads)
  except Exception as e:  # A build or a probe of thousands of files must never stop on one of them.
    return _rejected(path, 'error', _brief(e))


def probe_ok(path: str) -> bool:
  """For `splits.check(probe=...)`: usable as built by default (partial files are quarantined too)."""
  return probe(path).status == OK


def summarize(verdicts: Iterable[Verdict]) -> dict[str, dict[str, int]]:
  """{'ok': {'': n}, 'partial': {reason: n}, 'rejected': {reason: n}} with zero counts left out."""
  out: dict[str, dict[str, int]] = {OK: {}, PARTIAL: {}, REJECTED: {}}
  for v in verdicts:
    out[v.status][v.reason] = out[v.status].get(v.reason, 0) + 1
  return {status: dict(sorted(reasons.items())) for status, reasons in out.items()}


# ---------------------------------------------------------------------------------------------------
# Decoding for storage: bounded memory, whatever the length.


@dataclasses.dataclass(frozen=True)
class StorageOptions:
  """How videos are stored. Recorded in every dataset's metadata.

  Attributes:
    short_side: resize so the shorter side has this many pixels, keeping the aspect ratio (None: keep).
      Never upscales: a smaller video keeps its size. 256 leaves room for 224 crops.
    max_frames: store at most this many frames, evenly spaced in time over the whole clip (see
      `_Keeper`). 80 = 10 per segment for the 8-segment sampler, so 10 test clips of 8 frames (HMDB's
      protocol) land on distinct frames (64 gave only 8 distinct clips; docs/parity.md); a 10 s
      Kinetics clip keeps ~8 fps.
    target_fps: optionally drop frames closer than 1/target_fps to the last kept one first (None: off).
    min_frames: fewer decoded frames than this rejects the video (`too_short`).
    keep_partial: store `partial` videos (still listed in the quarantine report) instead of dropping them.
    jpeg_quality: PIL JPEG quality of the stored frames.
  """
  short_side: int | None = 256
  max_frames: int = 80
  target_fps: float | None = None
  min_frames: int = MIN_FRAMES
  keep_partial: bool = False
  jpeg_quality: int = 90

  def __post_init__(self):
    if self.max_frames < 1 or self.min_frames < 1:
      raise ValueError(f'max_frames and min_frames must be >= 1, got {self.max_frames}, {self.min_frames}')
    if self.short_side is not None and self.short_side < 1:
      raise ValueError(f'short_side must be >= 1 or None, got {self.short_side}')
    if self.target_fps is not None and self.target_fps <= 0:
      raise ValueError(f'target_fps must be > 0 or None, got {self.target_fps}')
    if not 1 <= self.jpeg_quality <= 100:
      raise ValueError(f'jpeg_quality must be in 1..100, got {self.jpeg_quality}')

  def record(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
  """(width, height) with the shorter side scaled to short_side (rounded), never upscaled."""
  short = min(width, height)
  if short_side is None or short <= short_side:
    return width, height
  scale = short_side / short
  return (short_side, max(1, round(height * scale))) if width == short else (
      max(1, round(width * scale)), short_side)


class _Keeper:
  """Keeps an evenly spaced subset of a stream of unknown length in at most 2 * cap frames.

  Frames whose index (among those offered) is a multiple of `stride` are kept; when the buffer reaches
  2 * cap, stride doubles and every other kept frame goes. The buffer is thus always uniform in decode
  order, holds between cap and 2 * cap frames once the stream is long enough, and converts (resizes)
  only frames it keeps. The last frame is held unconverted on the side so the clip's end is covered.
  """

  def __init__(self, cap: int, convert: Callable[[Any], np.ndarray]):
    self.cap, self.convert, self.stride, self.count = cap, convert, 1, 0
    self.items: list[tuple[int, float, np.ndarray]] = []
    self.last: tuple[int, float, Any] | None = None

  def offer(self, frame: Any, t: float) -> None:
    index, self.count = self.count, self.count + 1
    self.last = (index, t, frame)
    if index % self.stride:
      return
    self.items.append((index, t, self.convert(frame)))
    if len(self.items) >= 2 * self.cap:
      self.stride *= 2
      self.items = [it for it in self.items if it[0] % self.stride == 0]

  def select(self) -> tuple[np.ndarray, np.ndarray]:
    """(frames [T, H, W, 3], times [T]): all kept if at most cap, else cap frames nearest to cap evenly
    spaced times over [first, last]. With fewer target times than buffered frames (spaced uniformly in
    decode order) the picks are distinct for constant-rate video; for variable-rate video a picture held
    longer than the spacing may be picked twice, which keeps the stored frames evenly spaced in time,
    the assumption the segment sampler makes."""
    items = self.items
    if self.last is not None and (not items or items[-1][0] != self.last[0]):
      index, t, frame = self.last
      items = items + [(index, t, self.convert(frame))]
    times = np.array([it[1] for it in items], np.float64)
    if len(items) > self.cap:
      targets = np.linspace(times[0], times[-1], self.cap)
      right = np.clip(np.searchsorted(times, targets), 1, len(times) - 1)
      pick = np.where(targets - times[right - 1] <= times[right] - targets, right - 1, right)
      items = [items[i] for i in pick]
      times = times[pick]
    return np.stack([it[2] for it in items]), times


class Decoded(NamedTuple):
  """A video as stored: frames uint8 [T, H, W, 3] (None when rejected), the stored frames' rate, the
  decoded frame count before subsampling, and the verdict."""
  frames: np.ndarray | None
  fps: float
  orig_frames: int
  verdict: Verdict


def decode_for_storage(path: str, options: StorageOptions = StorageOptions(), threads: int = 1) -> Decoded:
  """Streams `path` once: resizes the kept frames to options.short_side, applies the display rotation
  (phone videos store portrait frames as rotated landscape), subsamples to options.max_frames.

  Memory is bounded by 2 * max_frames resized frames however long the video is. fps is measured on the
  stored frames: (T - 1) / (their time span); for a single frame, the measured native rate.
  """
  import av  # Lazy: PyAV only where videos are decoded.
  state: dict[str, Any] = {}

  def convert(frame: av.VideoFrame) -> np.ndarray:
    if 'size' not in state:  # From the first frame (_scan stops at a frame of another size).
      state['size'] = output_size(frame.width, frame.height, options.short_side)
      state['turns'] = round((frame.rotation or 0) / 90) % 4
    w, h = state['size']  # Pixels taken as square (sample aspect ratio ignored, as decord does).
    img = frame.to_ndarray(format='rgb24', width=w, height=h, interpolation='AREA')  # AREA: antialiased.
    return np.ascontiguousarray(np.rot90(img, state['turns']) if state['turns'] else img)

  keeper = _Keeper(options.max_frames, convert)
  next_t = None

  def on_frame(frame: av.VideoFrame, index: int, t: float) -> None:
    nonlocal next_t
    del index  # The keeper counts the frames it is offered (after the fps cap).
    if options.target_fps is not None:
      if next_t is not None and t < next_t - 1e-6:
        return
      next_t = t + 1.0 / options.target_fps
    keeper.offer(frame, t)

  try:
    verdict = _scan(path, options.min_frames, on_frame, threads)
  except Exception as e:  # See probe().
    verdict = _rejected(path, 'error', _brief(e))
  if verdict.status == REJECTED:
    return Decoded(None, 0.0, verdict.frames, verdict)
  frames, times = keeper.select()
  span = times[-1] - times[0]
  fps = (len(times) - 1) / span if len(times) > 1 and span > 0 else (verdict.fps or 0.0)
  return Decoded(frames, float(fps), verdict.frames, verdict)


def encode_jpeg(frames: np.ndarray, quality: int) -> list[bytes]:
  """JPEG bytes of each frame (PIL), in the decoding worker: the TFDS writer then stores them as they
  are (tfds.features.Video takes encoded frames), so the single writer process never encodes."""
  out = []
  for img in frames:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format='JPEG', quality=quality)
    out.append(buf.getvalue())
  return out


@dataclasses.dataclass
class StoreResult:
  """What a build worker sends back: the example's fields (video as JPEG bytes) or only the verdict."""
  key: str
  label: int
  verdict: Verdict
  jpegs: list[bytes] | None = None
  fps: float = 0.0
  orig_frames: int = 0
  shape: tuple[int, ...] = ()


def store_task(task: tuple[str, str, int, StorageOptions]) -> StoreResult:
  """One build task, run in a worker process: (path, key, label, options) -> StoreResult.

  JPEG-encodes only what will be stored: ok videos, and partial ones with options.keep_partial.
  """
  path, key, label, options = task
  decoded = decode_for_storage(path, options)
  verdict = decoded.verdict
  result = StoreResult(key, label, verdict, orig_frames=decoded.orig_frames)
  if verdict.status == OK or (verdict.status == PARTIAL and options.keep_partial):
    try:
      result.jpegs = encode_jpeg(decoded.frames, options.jpeg_quality)
    except Exception as e:  # pylint: disable=broad-except
      result.verdict = _rejected(path, 'error', f'JPEG encoding failed: {type(e).__name__}: {e}')
      return result
    result.fps, result.shape = decoded.fps, decoded.frames.shape
  return result



# ---------------------------------------------------------------------------------------------------
# Running tasks in a process pool (here, not in the builder: spawned workers import only this module).


def _call(fn: Callable[[Any], Any], index: int, task: Any, marks: str | None = None) -> tuple[int, Any]:
  """In a worker: (index, fn(task)), or (index, the exception), so the caller knows which task it was.
  First leaves `marks/<index>` holding the worker's pid: the caller then knows the task started, in
  which process, and since when (see imap_bounded)."""
  if marks is not None:
    files.write_atomic(os.path.join(marks, str(index)), str(os.getpid()))
  try:
    return index, fn(task)
  except Exception as e:  # pylint: disable=broad-except
    return index, e


def _alive(pid: int) -> bool:
  """Whether process `pid` runs (a zombie, dead but not yet reaped by the pool, counts as dead)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[-1].split()[0] not in ('Z', 'X')
  except OSError:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    except PermissionError:
      return True
    return not os.path.isdir('/proc')  # /proc exists but has no entry: gone.


def imap_bounded(pool: Any, fn: Callable[[Any], Any], tasks: Iterable[Any], *, limit: int,
                 timeout_s: float, failed: Callable[[Any, str], Any], poll_s: float = 0.5) -> Iterator[Any]:
  """fn(task) for every task, run in a multiprocessing `pool`, yielded in completion order.

  Unlike Pool.imap: at most `limit` tasks are in flight, so memory stays bounded when the consumer is
  slower than the workers; several of these may run on one pool at once (each task is its own
  apply_async, no shared feeder thread to block); and a crashed or hung worker costs only its own task:
  each task marks its start with its worker's pid, so a task whose worker died is yielded as
  failed(task, why) within `poll_s`, and one running longer than `timeout_s` has its worker killed (the
  pool starts a replacement) and is yielded as failed. So is a task whose fn raised. As a last resort,
  when nothing at all happens for `timeout_s` (no result, no task starting), every pending task fails.
  """
  done: queue.Queue = queue.Queue()
  pending: dict[int, Any] = {}
  numbered = enumerate(tasks)
  marks = tempfile.mkdtemp(prefix='msta_tasks_')
  started: dict[int, tuple[int, float]] = {}  # index -> (worker pid, when we saw it start)
  last_event = [time.monotonic()]  # A result, a task starting or a task given up on.

  def submit() -> None:
    for i, task in itertools.islice(numbered, 1):
      pending[i] = task
      pool.apply_async(_call, (fn, i, task, marks), callback=done.put)

  def give_up(i: int, why: str) -> Any:
    task = pending.pop(i)
    started.pop(i, None)
    submit()
    return failed(task, why)

  def check(now: float) -> Iterator[Any]:
    """Notes tasks that started; fails those whose worker died or that ran past timeout_s."""
    for i in sorted(pending):
      if i not in started:
        try:
          with open(os.path.join(marks, str(i))) as f:
            started[i] = (int(f.read()), now)
          last_event[0] = now
        except (OSError, ValueError):
          continue
      pid, since = started[i]
      if not _alive(pid):
        last_event[0] = now
        yield give_up(i, f'its decoding process (pid {pid}) died')
      elif now - since > timeout_s:
        try:
          os.kill(pid, signal.SIGKILL)  # The pool replaces the worker; its result never comes.
        except ProcessLookupError:
          pass
        last_event[0] = now
        yield give_up(i, f'no result within {timeout_s:g} s: its decoding process hung and was killed')

  try:
    for _ in range(limit):
      submit()
    last_check = time.monotonic()
    while pending:
      try:
        i, out = done.get(timeout=poll_s)
      except queue.Empty:
        i, out = None, None
      now = time.monotonic()
      if i is not None:
        last_event[0] = now
        task = pending.pop(i, None)
        started.pop(i, None)
        if task is not None:  # None: given up on already, arrived late.
          submit()
          yield failed(task, f'{type(out).__name__}: {out}') if isinstance(out, Exception) else out
      if now - last_check >= poll_s:  # Also while results stream in: a hung task must not wait for them.
        last_check = now
        yield from check(now)
      if pending and now - last_event[0] > timeout_s:  # Last resort: nothing at all happens.
        for i in sorted(pending):
          yield give_up(i, f'no result within {timeout_s:g} s: its decoding process died or hung')
        last_event[0] = now
  finally:
    shutil.rmtree(marks, ignore_errors=True)


def failed_store(task: tuple[str, str, int, StorageOptions], why: str) -> StoreResult:
  """The StoreResult of a build task that produced nothing (see imap_bounded)."""
  path, key, label, _ = task
  return StoreResult(key, label, _rejected(path, 'error', why))
