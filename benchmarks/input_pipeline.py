"""Training input throughput: clips/s and clips/s per core of the TrainLoader, 8 frames at 224.

    USE_TF=0 .venv/bin/python benchmarks/input_pipeline.py                 # builds its own small dataset
    USE_TF=0 .venv/bin/python benchmarks/input_pipeline.py --data_dir=~/tensorflow_datasets \
        --name=video_folder/ssv2_vifi_few_shot --split=few_shot_train_k16

Reads a built dataset with the trainer's loader (`data.pipeline.TrainLoader`: random access, JPEG
decoding of the 8 sampled frames only, random-resized crop, flip, colour jitter 0.8, greyscale 0.2,
batching; normalisation is on the device since issue 18) and times whole batches after a warm-up, once
per setting: threads only in this process (--threads), and grain worker processes (--workers, each with
--worker_threads threads). --nocolour turns colour jitter and greyscale off; --nouint8_colour ships
colour-jittered clips as float32 (uint8 is the default, as the trainer's). Without --data_dir it writes
--videos test-made videos with PyAV (h264, --width x --height, textured moving content so that the
stored JPEGs have realistic sizes) and builds them with `msta_jax.tools.build` (default storage: short
side 256, at most 64 frames) into a temporary folder (or --work_dir, reused when it is there).

clips/s per core = clips/s / the cores this process may use (the goal is 45 or better with every
augmentation on). That wall-clock rate depends on what else runs on the machine; `clips_per_cpu_second`
much less (shared caches still slow it under load): the clips of the timed batches over the CPU seconds
the input spent on them (this process's `time.process_time`, all its threads, plus the worker
processes' user+system time from psutil). On idle cores that the loader saturates, the two agree.
Compare clips/s with benchmarks/train_step.py's: the slower of the two bounds a training run. The JSON also says how many such cores one H100 (~780 clips/s: ViCLIP-B/16 MSTA step
~0.51 TFLOP/clip at 40% bf16 MFU) and one TPU v4 host (~860 clips/s) would need. The machine may be
shared: the JSON records the 1-minute load average. Prints a table, then one JSON line.
"""
from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('USE_TF', '0')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_DATA_DIR = flags.DEFINE_string('data_dir', '', 'TFDS data dir of a built dataset ("": build one here).')
_NAME = flags.DEFINE_string('name', '', 'Dataset folder under --data_dir (e.g. video_folder/NAME).')
_SPLIT = flags.DEFINE_string('split', 'train', 'Split to read.')
_WORK_DIR = flags.DEFINE_string('work_dir', '', 'Where the self-built dataset goes ("": a temporary dir).')
_VIDEOS = flags.DEFINE_integer('videos', 48, 'Self-built dataset: number of videos.')
_SECONDS = flags.DEFINE_float('video_seconds', 4.0, 'Self-built dataset: length of each video.')
_WIDTH = flags.DEFINE_integer('width', 340, 'Self-built dataset: frame width.')
_HEIGHT = flags.DEFINE_integer('height', 256, 'Self-built dataset: frame height.')
_BATCH = flags.DEFINE_integer('batch', 8, 'Clips per batch.')
_FRAMES = flags.DEFINE_integer('frames', 8, 'Frames per clip.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, 'Crop size.')
_THREADS = flags.DEFINE_list('threads', ['1', '2', '4'], 'Loader threads (grain num_threads), no workers.')
_WORKERS = flags.DEFINE_list('workers', ['2'], 'Worker processes (grain MultiprocessingOptions) to measure.')
_WORKER_THREADS = flags.DEFINE_integer('worker_threads', 2, 'Threads in each worker process.')
_COLOUR = flags.DEFINE_bool('colour', True, 'Colour jitter 0.8 and greyscale 0.2 on (the training default).')
_UINT8_COLOUR = flags.DEFINE_bool('uint8_colour', True, 'Round colour-jittered clips to uint8 '
                                  '(config.data.augment.uint8_colour, the default); --nouint8_colour: float32.')
_WARMUP = flags.DEFINE_integer('warmup_batches', 3, 'Untimed batches per setting.')
_BATCHES = flags.DEFINE_integer('batches', 30, 'Timed batches per setting.')


def write_video(path: str, seconds: float, width: int, height: int, fps: int, seed: int) -> None:
  """An h264 video of moving stripes, a drifting block and mild noise (JPEG-compressible like video)."""
  import av
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  freq, speed, hue = rng.uniform(0.02, 0.08), rng.uniform(1, 4), rng.uniform(0, 2 * np.pi, 3)
  with av.open(path, 'w') as c:
    s = c.add_stream('libx264', rate=fps)
    s.width, s.height, s.pix_fmt = width, height, 'yuv420p'
    for i in range(int(seconds * fps)):
      phase = freq * (xx + 0.5 * yy) - 0.1 * speed * i
      img = 127 + 80 * np.sin(phase[..., None] + hue)
      bx, by = int(i * speed) % (width - 48), int(i * speed / 2) % (height - 48)
      img[by:by + 48, bx:bx + 48] = 255 - img[by:by + 48, bx:bx + 48]
      img += rng.normal(0, 8, img.shape)
      frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format='rgb24')
      for p in s.encode(frame):
        c.mux(p)
    for p in s.encode():
      c.mux(p)


def build_own(work_dir: str) -> tuple[str, str, float]:
  """Writes and builds the test-made dataset under work_dir. Returns (data_dir, name, build seconds)."""
  from msta_jax.data.builders import video_folder
  from msta_jax.tools import build
  videos, data_dir = os.path.join(work_dir, 'videos'), os.path.join(work_dir, 'tfds')
  name = 'video_folder/bench_pipeline'
  if os.path.exists(os.path.join(data_dir, name, video_folder.VERSION, 'dataset_info.json')):
    return data_dir, name, 0.0
  os.makedirs(videos, exist_ok=True)
  lines = []
  for i in range(_VIDEOS.value):
    write_video(os.path.join(videos, f'v{i:03d}.mp4'), _SECONDS.value, _WIDTH.value, _HEIGHT.value, 25, i)
    lines.append(f'v{i:03d}.mp4 {i % 4}')
  with open(os.path.join(work_dir, 'train.txt'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  start = time.perf_counter()
  rc = build.main(['build', '--name=bench_pipeline', f'--videos_dir={videos}', '--split',
                   f'train={os.path.join(work_dir, "train.txt")}', f'--data_dir={data_dir}', '--noprogress'])
  if rc:
    raise RuntimeError(f'msta_jax.tools.build failed with exit code {rc}')
  return data_dir, name, time.perf_counter() - start


# Consumption of one accelerator (clips/s) that the input must keep up with (issue 18's estimates).
ACCELERATORS = {'h100_40pct_mfu': 780.0, 'tpu_v4_host': 860.0}


def cpu_seconds(workers: bool) -> float:
  """CPU seconds used so far by this process (every thread) and, with `workers`, its live child processes
  (grain's workers: psutil reads them while they run; RUSAGE_CHILDREN would count only exited ones)."""
  total = time.process_time()
  if workers:
    import psutil  # Only here: the threads-only figure needs nothing beyond the standard library.
    for child in psutil.Process().children(recursive=True):
      try:
        t = child.cpu_times()
        total += t.user + t.system
      except psutil.NoSuchProcess:
        pass
  return total


def measure(src, threads: int, workers: int) -> dict:
  from msta_jax.data import pipeline, transforms
  from msta_jax.models import clip as clip_lib
  spec = pipeline.ClipSpec(_FRAMES.value, _IMAGE_SIZE.value, clip_lib.CLIP_MEAN, clip_lib.CLIP_STD)
  aug = transforms.Augment(uint8_colour=_UINT8_COLOUR.value)
  if not _COLOUR.value:
    aug = transforms.Augment(color_jitter=0.0, grayscale=0.0)
  loader = pipeline.TrainLoader(src, global_batch=_BATCH.value, clip=spec, augment=aug, seed=0,
                                num_threads=threads, num_workers=workers)
  for _ in range(_WARMUP.value):
    batch = next(loader)
  want = (_BATCH.value, _FRAMES.value, _IMAGE_SIZE.value, _IMAGE_SIZE.value, 3)
  if batch['video'].shape != want:
    raise AssertionError(f'video batch {batch["video"].shape}, expected {want}')
  times = []
  cpu_start, start = cpu_seconds(bool(workers)), time.perf_counter()
  for _ in range(_BATCHES.value):
    t = time.perf_counter()
    next(loader)
    times.append(time.perf_counter() - t)
  total = time.perf_counter() - start
  cpu = cpu_seconds(bool(workers)) - cpu_start
  loader.close()  # Its prefetch threads and workers must not run into the next setting's timing.
  clips = _BATCHES.value * _BATCH.value
  return {'threads': threads, 'workers': workers, 'clips_per_s': clips / total,
          'cpu_ms_per_clip': 1e3 * cpu / clips, 'clips_per_cpu_second': clips / cpu,
          'median_batch_s': statistics.median(times), 'total_s': total, 'video_dtype': str(batch['video'].dtype),
          'video_bytes_per_clip': int(batch['video'][0].nbytes)}


def main(argv):
  del argv
  from msta_jax.data import pipeline
  cores = len(os.sched_getaffinity(0))
  build_s = None
  with tempfile.TemporaryDirectory() as tmp:
    if _DATA_DIR.value:
      data_dir, name = os.path.expanduser(_DATA_DIR.value), _NAME.value
      if not name:
        raise app.UsageError('--data_dir needs --name (the dataset folder under it)')
    else:
      work = os.path.expanduser(_WORK_DIR.value) or tmp
      data_dir, name, build_s = build_own(work)
    src = pipeline.open_split(data_dir, name, _SPLIT.value)
    frames = [len(pipeline.parse(src.source[i])['frames']) for i in range(min(len(src), 8))]
    jpeg = np.mean([len(b) for b in pipeline.parse(src.source[0])['frames']])
    rows = ([measure(src, int(t), 0) for t in _THREADS.value] +
            [measure(src, _WORKER_THREADS.value, int(w)) for w in _WORKERS.value])
  print(f'dataset {name} split {_SPLIT.value}: {len(src)} clips, ~{np.mean(frames):.0f} stored frames each, '
        f'~{jpeg / 1024:.1f} KiB per JPEG frame; {cores} cores')
  print(f'{"workers":>7s} {"threads":>7s} {"clips/s":>8s} {"clips/s/core":>12s} {"clips/cpu-s":>11s} '
        f'{"cpu ms/clip":>11s} {"batch s":>8s}')
  for r in rows:
    r['clips_per_s_per_core'] = r['clips_per_s'] / cores
    print(f'{r["workers"]:7d} {r["threads"]:7d} {r["clips_per_s"]:8.1f} {r["clips_per_s_per_core"]:12.1f} '
          f'{r["clips_per_cpu_second"]:11.1f} {r["cpu_ms_per_clip"]:11.2f} {r["median_batch_s"]:8.3f}')
  best = max(rows, key=lambda r: r['clips_per_s'])
  best_threads = max((r for r in rows if not r['workers']), key=lambda r: r['clips_per_s'], default=None)
  best_workers = max((r for r in rows if r['workers']), key=lambda r: r['clips_per_s'], default=None)
  per_core = best['clips_per_s'] / cores
  print(json.dumps({
      'benchmark': 'input_pipeline', 'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'dataset': name, 'split': _SPLIT.value, 'clips_in_split': len(src), 'self_built': not _DATA_DIR.value,
      'build_s': build_s, 'stored_frames_mean': float(np.mean(frames)), 'jpeg_bytes_mean': float(jpeg),
      'batch': _BATCH.value, 'frames': _FRAMES.value, 'image_size': _IMAGE_SIZE.value, 'cores': cores,
      'loadavg_1min': round(os.getloadavg()[0], 2), 'colour_ops': _COLOUR.value,
      'uint8_colour': _UINT8_COLOUR.value, 'settings': rows,
      'threads_only_clips_per_s_per_core': best_threads and best_threads['clips_per_s_per_core'],
      'workers_clips_per_s_per_core': best_workers and best_workers['clips_per_s_per_core'],
      'threads_only_clips_per_cpu_second': best_threads and best_threads['clips_per_cpu_second'],
      'workers_clips_per_cpu_second': best_workers and best_workers['clips_per_cpu_second'],
      'best_threads': best['threads'], 'best_workers': best['workers'],
      'cores_needed': {k: round(v / per_core, 1) for k, v in ACCELERATORS.items()},
      'clips_per_s': best['clips_per_s'], 'clips_per_s_per_core': per_core,
      'clips_per_cpu_second': best['clips_per_cpu_second'], 'cpu_ms_per_clip': best['cpu_ms_per_clip'],
      'goal_clips_per_s_per_core': 45.0,
  }))


if __name__ == '__main__':
  app.run(main)
