"""Positional-embedding resizing matches torch's F.interpolate, and load() applies it."""
import numpy as np
import pytest
from absl import logging

from msta_jax import models
from msta_jax.models import resize
from tests.models import refs
from tests.torch_or_skip import torch  # Skips this module where torch is absent.


@pytest.mark.parametrize('n_in,n_out', [(8, 12), (8, 16), (3, 7)])
def test_linear_matches_torch(n_in, n_out):
  x = np.random.RandomState(0).randn(n_in, 5).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.from_numpy(x.T[None]), size=n_out, mode='linear',
                                        align_corners=False)[0].numpy().T
  np.testing.assert_allclose(resize.linear_1d(x, n_out), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('g_in,g_out', [(14, 16), (14, 7), (5, 6)])
def test_bicubic_matches_torch_and_keeps_cls(g_in, g_out):
  pos = np.random.RandomState(1).randn(1 + g_in * g_in, 4).astype(np.float32)
  grid = torch.from_numpy(pos[1:].reshape(g_in, g_in, 4)).permute(2, 0, 1)[None]
  ref = torch.nn.functional.interpolate(grid, size=(g_out, g_out), mode='bicubic', align_corners=False)
  ref = ref[0].permute(1, 2, 0).reshape(-1, 4).numpy()
  out = resize.resize_spatial(pos, g_out)
  np.testing.assert_array_equal(out[0], pos[0])
  np.testing.assert_allclose(out[1:], ref, atol=1e-5)


@pytest.fixture(scope='module')
def viclip_path(tmp_path_factory):
  hf = refs.hf_clip(refs.HEADS64_VISION, refs.HEADS64_TEXT, projection_dim=48, seed=7)
  temporal = np.random.RandomState(2).randn(8, 128).astype(np.float32)
  path = str(tmp_path_factory.mktemp('v') / 'viclip.pth')
  torch.save({'model': refs.viclip_state_dict(hf, temporal)}, path)
  return path, temporal


def test_load_more_frames_interpolates(viclip_path, monkeypatch):
  path, temporal = viclip_path
  notes = []
  monkeypatch.setattr(logging, 'info', lambda msg, *a: notes.append(msg % a))
  model, params = models.load(path, num_frames=12)
  assert model.cfg.vision.num_frames == 12
  np.testing.assert_allclose(params['visual']['temporal_positional_embedding'],
                             resize.linear_1d(temporal, 12), atol=1e-6)
  assert any('8 -> 12 frames (linear interpolation)' in n for n in notes)
  video = np.zeros((1, 12, 40, 40, 3), np.float32)
  assert model.apply({'params': params}, video, method=model.encode_video).shape == (1, 48)


def test_load_fewer_frames_truncates(viclip_path):
  path, temporal = viclip_path
  model, params = models.load(path, num_frames=4)
  np.testing.assert_array_equal(params['visual']['temporal_positional_embedding'], temporal[:4])
  with pytest.raises(ValueError, match='num_frames=6'):
    model.apply({'params': params}, np.zeros((1, 6, 40, 40, 3), np.float32), method=model.encode_video)


def test_load_other_resolution(viclip_path):
  model, params = models.load(viclip_path[0], image_size=48)
  assert params['visual']['positional_embedding'].shape == (37, 128)
  out = model.apply({'params': params}, np.zeros((2, 48, 48, 3), np.float32), method=model.encode_image)
  assert out.shape == (2, 48)
  with pytest.raises(ValueError, match='multiple of the patch size'):
    models.load(viclip_path[0], image_size=50)
