"""Generates the synthetic known-answer dataset (msta_jax/data/synthetic.py) and its descriptions.

  python -m msta_jax.tools.synthetic --data_dir=DIR [--seed=0] [--frames=8] [--size=32] \
      [--sizes=test_per_class=8,few_shot_shots=2/4/8] [--write_descriptions=FILE]

Builds the TFDS dataset of Spec(seed, frames, size, sizes) into DIR (skipped when built, as training
does on first use) and prints its splits; --write_descriptions writes the class descriptions as a
descriptions JSON file. Exit status 2 on usage errors.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from absl import flags

from msta_jax.data import synthetic
from msta_jax.tools import cli


def _flags() -> flags.FlagValues:
  fv = flags.FlagValues()  # Private: imported next to other tools (tests) that define --data_dir too.
  flags.DEFINE_string('data_dir', None, 'TFDS data directory to build into (skipped if built).', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Generator seed.', flag_values=fv)
  flags.DEFINE_integer('frames', synthetic.Spec.frames, 'Frames per clip.', flag_values=fv)
  flags.DEFINE_integer('size', synthetic.Spec.size, 'Frame height = width, pixels.', flag_values=fv)
  flags.DEFINE_string('sizes', '', "Split sizes, e.g. 'test_per_class=8,few_shot_shots=2/4/8'.", flag_values=fv)
  flags.DEFINE_string('write_descriptions', None, 'Write the class descriptions to this file.', flag_values=fv)
  return fv


def parse_sizes(text: str) -> dict[str, Any]:
  """'test_per_class=8,few_shot_shots=2/4' -> typed kwargs for Spec (unknown keys raise)."""
  defaults = synthetic.Spec().to_dict()
  out: dict[str, Any] = {}
  for item in filter(None, (s.strip() for s in text.split(','))):
    key, _, value = item.partition('=')
    if key not in defaults or key == 'seed':
      raise ValueError(f'unknown size {key!r}; known: {sorted(set(defaults) - {"seed"})}')
    out[key] = tuple(int(v) for v in value.split('/')) if key == 'few_shot_shots' else int(value)
  return out


def main(argv: list[str]) -> int:
  fv = _flags()
  if cli.print_help_if_asked(argv, __doc__, fv):
    return 0
  try:
    rest = fv(argv)
    sizes = parse_sizes(fv.sizes)
  except (flags.Error, ValueError) as e:
    print(f'usage error: {e}\n{__doc__}', file=sys.stderr)
    return 2
  if len(rest) > 1 or not (fv.data_dir or fv.write_descriptions):
    print(f'usage error: give --data_dir and/or --write_descriptions (and no other arguments)\n{__doc__}',
          file=sys.stderr)
    return 2
  if fv.write_descriptions:
    synthetic.write_descriptions(fv.write_descriptions)
    print(f'wrote descriptions of {synthetic.NUM_CLASSES} classes to {fv.write_descriptions}')
  if fv.data_dir:
    import tensorflow_datasets as tfds  # Lazy: TensorFlow only when a dataset is built.
    from msta_jax.data.builders import synthetic as builder_lib  # Lazy: imports TensorFlow.
    tfds.disable_progress_bar()
    start = time.time()
    builder = builder_lib.build(fv.data_dir, seed=fv.seed, frames=fv.frames, size=fv.size, **sizes)
    print(f'{builder.info.full_name} in {builder.data_dir} ({time.time() - start:.1f} s)')
    for name, split in builder.info.splits.items():
      meta = builder.info.metadata['splits'][name]
      print(f'  {name:22s} {split.num_examples:6d} clips  {len(meta["classes"]):3d} classes '
            f'({meta["class_list"]})')
  return 0


if __name__ == '__main__':
  cli.run(main)
