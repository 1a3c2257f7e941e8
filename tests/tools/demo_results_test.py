"""The demo rows' per-axis temporal-pair accuracy, from a logits file the test writes."""
import os

import numpy as np

from msta_jax.data import synthetic
from msta_jax.tools import demo_results


def test_temporal_by_axis_counts_each_axis_from_the_saved_logits(tmp_path):
  classes = synthetic.class_names()[:16]          # Two compositions x 8 motions: every twin present.
  labels = np.arange(16)
  logits = np.zeros((16, 16), np.float32)
  for row, label in enumerate(labels):
    twin = synthetic.twin(int(label))
    axis = synthetic.AXES[synthetic.factors(int(label))[2] // 2]
    logits[row, label] = {'horizontal': 2.0, 'vertical': 2.0, 'orbit': 0.0, 'size': 1.0}[axis]
    logits[row, twin] = {'horizontal': 1.0, 'vertical': 0.0, 'orbit': 1.0, 'size': 1.0}[axis]
  os.makedirs(tmp_path / 'logits')
  np.savez(tmp_path / 'logits' / 'few_shot_test.npz', logits=logits, label=labels, classes=np.array(classes))
  got = demo_results.temporal_by_axis(str(tmp_path), ('few_shot_test',))
  assert got == {'horizontal': 100.0, 'vertical': 100.0, 'orbit': 0.0, 'size': 50.0}   # size: ties count half
  assert demo_results.temporal_by_axis(str(tmp_path), ('few_shot_test', 'missing')) is None
