"""The synthetic demo's input is bit-identical to what it was when its known answer was measured.

Training and evaluation batches of configs/synthetic.py (no crop, no flip, no colour ops; evaluation
'squash') read from the session's small synthetic build, hashed. The reference hashes were computed with
the pipeline at 928a0fc, before the input pipeline's CPU work (planar colour ops, PIL flips, no copy of
decoded RGB frames, malloc thresholds) changed; a change that moves one pixel or one label fails here.
"""
import hashlib

import numpy as np

from configs import synthetic as synthetic_config
from msta_jax.data import pipeline, transforms
from tests.data.synthetic_test import SPEC

WANT = {
    'train': '174991570caffc5b74e84425722b93049d394fb0c1d62c055629198759830f78',
    'eval': 'adab07fd25dfe7b18b59189617986e988bf1150a9861bfbda1eb597142f2944c',
    # Beyond the demo: random crops resized to 24 and flips (no colour ops), 3-crop short-side views.
    'train_crop_flip_24': '6e1b8c77c465b3cc76f8bbd2fc88ed46b0d6aa64fe2a7e364e5e6cdba77ffa8a',
    'eval_short_side_24': '2db6218240b91ce9ab4b1bd80c581c9f924d7ab62c62007814e2087524808950',
}


def _digest(batches) -> str:
  h = hashlib.sha256()
  for b in batches:
    for k in sorted(b):
      v = np.asarray(b[k])
      h.update(f'{k}:{v.dtype}:{v.shape}'.encode())
      h.update(np.ascontiguousarray(v).tobytes())
  return h.hexdigest()


def test_synthetic_config_batches_are_bit_identical_to_928a0fc(synthetic_small_build):
  data_dir, _ = synthetic_small_build
  c = synthetic_config.get_config('shots=2')
  d, a = c.data, c.data.augment
  clip = pipeline.ClipSpec(c.model.num_frames, c.model.image_size, (0.5,) * 3, (0.25,) * 3)
  aug = transforms.Augment(tuple(a.crop_scale), a.flip, a.color_jitter, a.grayscale, a.uint8_colour)
  name = f'synthetic/{SPEC.name}'
  train_src = pipeline.open_split(data_dir, name, d.train_split)
  loader = pipeline.TrainLoader(train_src, global_batch=8, clip=clip, augment=aug, seed=c.seed,
                                num_threads=d.num_threads, num_workers=d.num_workers,
                                decoded_cache_bytes=int(d.decoded_cache_mb * 2**20))  # As the trainer builds it.
  train = [next(loader) for _ in range(3)]
  loader.close()
  assert train[0]['video'].dtype == np.uint8 and train[0]['video'].shape == (8, 8, 32, 32, 3)
  e = c.eval
  evals = list(pipeline.eval_batches(pipeline.open_split(data_dir, name, d.val_split), global_batch=8,
                                     clip=clip, clips=e.clips, crops=e.crops, resize=e.resize,
                                     num_threads=d.num_threads))[:2]
  assert evals[0]['video'].shape == (8, 1, 8, 32, 32, 3)
  small = pipeline.ClipSpec(c.model.num_frames, 24, (0.5,) * 3, (0.25,) * 3)
  crop_flip = transforms.Augment(crop_scale=(0.5, 1.0), flip=True, color_jitter=0.0, grayscale=0.0)
  loader = pipeline.TrainLoader(train_src, global_batch=8, clip=small, augment=crop_flip, seed=1, num_threads=2,
                                decoded_cache_bytes=1 << 20)  # Cached arrays through PIL's crop and flip.
  train_small = [next(loader) for _ in range(2)]
  loader.close()
  evals_small = list(pipeline.eval_batches(pipeline.open_split(data_dir, name, d.val_split), global_batch=8,
                                           clip=small, clips=1, crops=3, resize='short_side', num_threads=2))[:1]
  got = {'train': _digest(train), 'eval': _digest(evals),
         'train_crop_flip_24': _digest(train_small), 'eval_short_side_24': _digest(evals_small)}
  assert got == WANT
