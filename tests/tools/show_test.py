"""The contact sheet: un-normalised frames land in the right cells."""
import numpy as np

from msta_jax.tools import show


def test_sheet_places_frames_and_undoes_normalisation():
  mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
  clips = np.zeros((2, 3, 4, 4, 3), np.float32)
  clips[1, 2] = (1.0 - 0.5) / 0.25   # pure white frame at row 1, column 2
  img = np.asarray(show.sheet(clips, ['a', 'b'], mean, std, cell=8))
  assert img.shape == (2 * (8 + 14), 3 * 8, 3)
  assert (img[22 + 14:22 + 22, 16:24] == 255).all()           # row 1, frame 2: white
  assert (img[14:22, 0:8] == 127).all()                          # row 0, frame 0: mean grey
