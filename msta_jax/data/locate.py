"""Finds listed videos in a dataset folder laid out as downloaded, not only as the lists write them.

The lists name videos the ViFi-CLIP way (one flat folder for HMDB51 and UCF101, `train/<ytid>_...mp4` for
Kinetics); official downloads nest them in class folders (`UCF-101/<Class>/v_<Class>_gXX_cYY.avi`, HMDB51's
rar-extracted `<class>/<video>.avi`, Kinetics' `train/<class>/<ytid>_...mp4`). A listed path that is not
where the list says is looked up by file name anywhere under the folder: one walk of the tree, done only
when some listed path is absent. The example keeps the path as the list writes it (its `video_id`).
"""
from __future__ import annotations

import collections
import os


class Locator:
  """listed relative path -> the file on disk (None when absent or ambiguous)."""

  def __init__(self, videos_dir: str):
    self.videos_dir = videos_dir
    self._by_name: dict[str, list[str]] | None = None

  def _index(self) -> dict[str, list[str]]:
    if self._by_name is None:
      by_name = collections.defaultdict(list)
      for root, dirs, files in os.walk(self.videos_dir, followlinks=True):
        dirs.sort()
        for f in files:
          by_name[f].append(os.path.relpath(os.path.join(root, f), self.videos_dir))
      self._by_name = dict(by_name)
    return self._by_name

  def find(self, rel: str) -> str | None:
    """The absolute path of listed `rel`: as listed, else the one file of that name whose folder path
    starts with the listed folders (`train/x.mp4` matches `train/<class>/x.mp4`, not `val/x.mp4`)."""
    direct = os.path.join(self.videos_dir, rel)
    if os.path.isfile(direct):
      return direct
    head = os.path.dirname(rel)
    hits = [h for h in self._index().get(os.path.basename(rel), [])
            if not head or h.startswith(head + os.sep)]
    return os.path.join(self.videos_dir, hits[0]) if len(hits) == 1 else None
