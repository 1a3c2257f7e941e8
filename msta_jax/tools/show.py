"""A contact sheet of what the model sees: augmented training clips (or test views) with their labels.

    python -m msta_jax.tools.show --config=configs/tiny.py --split=train [--rows=6] [--out=sheet.png]

One row per clip: its T frames after sampling, augmentation and un-normalisation, labelled with the
class name. `--split` is 'train' (the config's training split through the training pipeline), 'val',
or a split name (test views, first view of each clip).
"""
from __future__ import annotations

import os

import numpy as np
from absl import app, flags
from ml_collections import config_flags
from PIL import Image, ImageDraw

from msta_jax.data import normalize, pipeline, prepare, transforms
from msta_jax.train import from_config


def sheet(clips: np.ndarray, labels: list[str], mean, std, cell: int) -> Image.Image:
  """clips float32 [N, T, H, W, 3] (normalised) -> a PNG-ready grid with a label strip per row."""
  n, t = clips.shape[:2]
  pixels = np.clip((clips * np.asarray(std) + np.asarray(mean)) * 255, 0, 255).astype(np.uint8)
  strip = 14
  img = Image.new('RGB', (t * cell, n * (cell + strip)), 'white')
  draw = ImageDraw.Draw(img)
  for i in range(n):
    y = i * (cell + strip)
    draw.text((2, y + 1), labels[i][:80], fill='black')
    for j in range(t):
      frame = Image.fromarray(pixels[i, j]).resize((cell, cell), Image.NEAREST)
      img.paste(frame, (j * cell, y + strip))
  return img


def _define_flags() -> None:
  """CLI flags, defined only when this module runs as a program (importing it for its functions
  must not claim global flag names that another tool also uses)."""
  global _CONFIG, _SPLIT, _ROWS, _OUT, _CELL
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file.', lock_config=True)
  _SPLIT = flags.DEFINE_string('split', 'train', "'train', 'val' or a split name of the config's dataset.")
  _ROWS = flags.DEFINE_integer('rows', 6, 'Clips to show.')
  _OUT = flags.DEFINE_string('out', 'contact_sheet.png', 'PNG file to write.')
  _CELL = flags.DEFINE_integer('cell', 96, 'Pixels per frame in the sheet.')


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  if config is None:
    raise app.UsageError('--config is required')
  prepare.ensure(config.data)
  arch = from_config.architecture(config)
  clip = pipeline.ClipSpec(arch.vision.num_frames, arch.vision.image_size, tuple(arch.mean), tuple(arch.std))
  d = config.data
  split = {'train': d.train_split, 'val': d.val_split}.get(_SPLIT.value, _SPLIT.value)
  if not split:
    raise app.UsageError(f'--split={_SPLIT.value}: the config names no such split')
  src = pipeline.open_split(d.data_dir, prepare.dataset_name(d), split)
  rows = min(_ROWS.value, len(src))
  if _SPLIT.value == 'train':
    aug = transforms.Augment(tuple(d.augment.crop_scale), d.augment.flip, d.augment.color_jitter, d.augment.grayscale,
                             d.augment.uint8_colour)
    loader = pipeline.TrainLoader(src, global_batch=rows, clip=clip, augment=aug, seed=config.seed, num_threads=2)
    batch = next(loader)
    loader.close()
    clips = batch['video']
  else:
    batch = next(pipeline.eval_batches(src, global_batch=rows, clip=clip, clips=config.eval.clips,
                                       crops=config.eval.crops, resize=config.eval.resize))
    clips = batch['video'][:, 0]
  labels = [f'{src.classes[int(y)]} ({split})' for y in batch['label']]
  rule = 'train' if _SPLIT.value == 'train' else 'test'  # The model's input, as the device normalises it.
  clips = np.asarray(normalize.model_input(clips, clip.mean, clip.std, rule))
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  sheet(clips, labels, clip.mean, clip.std, _CELL.value).save(_OUT.value)
  print(f'wrote {_OUT.value}: {rows} clips x {clip.num_frames} frames from {src.path}:{split}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
