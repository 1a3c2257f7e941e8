"""Video decoding with PyAV (bundled codecs; no ffmpeg binary needed)."""
from __future__ import annotations

import numpy as np


class VideoError(ValueError):
  """A video cannot be decoded; the message names the file and the reason."""


def read_video(path: str, max_frames: int | None = None) -> np.ndarray:
  """Decodes the first video stream of `path` to RGB frames uint8 [T, H, W, 3]."""
  import av
  try:
    container = av.open(path)
  except (av.error.FFmpegError, OSError) as e:
    raise VideoError(f'{path}: cannot open ({e})') from e
  with container:
    if not container.streams.video:
      raise VideoError(f'{path}: no video stream')
    frames = []
    try:
      for frame in container.decode(video=0):
        frames.append(frame.to_ndarray(format='rgb24'))
        if max_frames is not None and len(frames) >= max_frames:
          break
    except av.error.FFmpegError as e:
      if not frames:
        raise VideoError(f'{path}: decoding failed before the first frame ({e})') from e
  if not frames:
    raise VideoError(f'{path}: no decodable frames')
  return np.stack(frames)
