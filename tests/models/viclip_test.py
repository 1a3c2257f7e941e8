"""ViCLIP and OpenAI checkpoints, written by the test in their real formats, against HF references."""
import numpy as np
import pytest

from msta_jax import models
from tests.models import refs
from tests.torch_or_skip import torch  # Skips this module where torch is absent.

TOL = 1e-4


def _rel_err(ours, ref):
  return float(np.max(np.abs(np.asarray(ours) - ref)) / np.max(np.abs(ref)))


@pytest.fixture(scope='module')
def hf32():
  return refs.hf_clip(refs.HEADS64_VISION, refs.HEADS64_TEXT, projection_dim=48, seed=3)


def _save_pth(hf, temporal, path):
  torch.save({'model': refs.viclip_state_dict(hf, temporal), 'epoch': 3, 'global_step': 1200}, path)
  return path


def test_one_frame_with_zero_temporal_is_the_image_embedding(hf32, tmp_path):
  path = _save_pth(hf32, np.zeros((8, 128), np.float32), str(tmp_path / 'viclip.pth'))
  model, params = models.load(path)
  assert model.cfg.video_mode == 'joint' and model.cfg.vision.num_frames == 8
  assert model.cfg.mean == models.IMAGENET_MEAN and model.cfg.text.context_length == 32
  images = np.random.RandomState(0).randn(3, 40, 40, 3).astype(np.float32)
  ours = model.apply({'params': params}, images[:, None], method=model.encode_video)
  assert _rel_err(ours, refs.image_features(hf32, images)) <= TOL
  np.testing.assert_allclose(np.exp(params['logit_scale']), 50.0, rtol=1e-5)


@pytest.mark.parametrize('frames', [8, 1])
def test_joint_video_matches_reference_on_hf_layers(hf32, tmp_path, frames):
  temporal = np.random.RandomState(1).randn(8, 128).astype(np.float32) * 0.5
  model, params = models.load(_save_pth(hf32, temporal, str(tmp_path / 'v.pth')))
  videos = np.random.RandomState(2).randn(2, frames, 40, 40, 3).astype(np.float32)
  ours = model.apply({'params': params}, videos, method=model.encode_video)
  used = temporal if frames == 8 else temporal.mean(0, keepdims=True)  # ViCLIP's one-frame rule.
  ref = refs.joint_reference(hf32, videos, used)
  assert _rel_err(ours, ref) <= TOL
  # The temporal embedding matters: frame order changes the embedding.
  flipped = model.apply({'params': params}, videos[:, ::-1], method=model.encode_video)
  assert frames == 1 or _rel_err(flipped, ref) > 1e-3


def test_text_matches_hf_at_context_32(hf32, tmp_path):
  model, params = models.load(_save_pth(hf32, np.zeros((8, 128), np.float32), str(tmp_path / 'v.pth')))
  ids, _ = models.Tokenizer(32)(['a video of archery.', 'someone ' * 40])
  ours = model.apply({'params': params}, ids, method=model.encode_text)
  assert _rel_err(ours, refs.text_features(hf32, ids)) <= TOL


def test_viclip_safetensors_and_hf_style_dir(hf32, tmp_path):
  from safetensors.torch import save_file
  temporal = np.random.RandomState(5).randn(8, 128).astype(np.float32)
  sd = refs.viclip_state_dict(hf32, temporal)
  save_file(sd, str(tmp_path / 'viclip.safetensors'))
  _, p1 = models.load(str(tmp_path / 'viclip.safetensors'))
  d = tmp_path / 'ViCLIP-hf'
  d.mkdir()
  save_file(sd, str(d / 'model.safetensors'))
  (d / 'config.json').write_text('{"architectures": ["ViCLIP"], "size": "b"}')
  _, p2 = models.load(str(d))
  _, p3 = models.load(_save_pth(hf32, temporal, str(tmp_path / 'v.pth')))
  for a, b in ((p1, p2), (p1, p3)):
    np.testing.assert_array_equal(a['visual']['temporal_positional_embedding'],
                                  b['visual']['temporal_positional_embedding'])
    np.testing.assert_array_equal(a['text']['text_projection'], b['text']['text_projection'])


def test_openai_torchscript_archive(hf32, tmp_path):
  hf = refs.hf_clip(refs.HEADS64_VISION, dict(refs.HEADS64_TEXT, max_position_embeddings=24),
                   projection_dim=48, seed=4)
  scripted = torch.jit.script(refs.OpenAICLIP(hf).eval())
  path = str(tmp_path / 'ViT-tiny.pt')
  torch.jit.save(scripted, path)
  model, params = models.load(path)
  assert model.cfg.video_mode == 'frame_average' and model.cfg.text.context_length == 24
  assert (model.cfg.vision.heads, model.cfg.text.heads) == (2, 1)  # width / 64, as OpenAI.
  images = np.random.RandomState(6).randn(2, 40, 40, 3).astype(np.float32)
  ids, _ = models.Tokenizer(24)(['a photo of a dog', 'two cats'])
  with torch.no_grad():
    ts_img, ts_txt = scripted(torch.from_numpy(images).permute(0, 3, 1, 2), torch.from_numpy(ids).long())
  img = model.apply({'params': params}, images, method=model.encode_image)
  txt = model.apply({'params': params}, ids, method=model.encode_text)
  # Against HF and against the scripted OpenAI-layout module itself.
  assert _rel_err(img, refs.image_features(hf, images)) <= TOL
  assert _rel_err(txt, refs.text_features(hf, ids)) <= TOL
  assert _rel_err(img, ts_img.numpy()) <= TOL
  assert _rel_err(txt, ts_txt.numpy()) <= TOL
