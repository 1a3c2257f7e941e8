"""verify_viclip's mechanics on a test-made ViCLIP checkpoint and a test-made MP4."""
import json
import subprocess
import sys

import av
import numpy as np

from msta_jax.models import IMAGENET_MEAN, IMAGENET_STD
from msta_jax.tools import verify_viclip as vv


def _write_mp4(path, frames):
  with av.open(path, 'w') as c:
    s = c.add_stream('mpeg4', rate=10)
    s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], 'yuv420p'
    for f in frames:
      for packet in s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')):
        c.mux(packet)
    for packet in s.encode():
      c.mux(packet)


def test_demo_frames_sampling_and_normalisation():
  frames = np.stack([np.full((10, 20, 3), i * 10, np.uint8) for i in range(20)])
  x = vv.demo_frames(frames, 8, 40, IMAGENET_MEAN, IMAGENET_STD)
  assert x.shape == (8, 40, 40, 3)
  picked = np.array([0, 2, 4, 6, 8, 10, 12, 14]) * 10  # step = 20 // 8 = 2, first 8.
  want = (picked[:, None] / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
  np.testing.assert_allclose(x[:, 7, 13], want, rtol=1e-5)


def test_tool_runs_and_reports(tmp_path):
  from tests.models import refs  # Lazy, as it needs torch: the sampling test above runs without it.
  from tests.torch_or_skip import torch
  hf = refs.hf_clip(refs.HEADS64_VISION, refs.HEADS64_TEXT, projection_dim=48, seed=9)
  ckpt = str(tmp_path / 'viclip.pth')
  torch.save({'model': refs.viclip_state_dict(hf, np.zeros((8, 128), np.float32))}, ckpt)
  rng = np.random.RandomState(0)
  video = str(tmp_path / 'clip.mp4')
  _write_mp4(video, rng.randint(0, 255, (24, 48, 64, 3)).astype(np.uint8))
  probs = vv.caption_probs(ckpt, video)
  assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5
  top = np.argsort(-probs)[:5]
  expected = tmp_path / 'expected.json'
  expected.write_text(json.dumps([[int(i), float(probs[i])] for i in top]))
  cmd = [sys.executable, '-m', 'msta_jax.tools.verify_viclip', f'--checkpoint={ckpt}', f'--video={video}']
  ok = subprocess.run(cmd + [f'--expected={expected}'], capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr
  assert json.loads(ok.stdout.strip().splitlines()[-1])['pass'] is True
  assert 'not the notebook clip' in ok.stderr
  # Against the notebook's numbers a random model must fail, with exit status 1.
  bad = subprocess.run(cmd, capture_output=True, text=True)
  assert bad.returncode == 1 and json.loads(bad.stdout.strip().splitlines()[-1])['pass'] is False
