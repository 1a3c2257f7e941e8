"""MSTA on the synthetic dataset with a tiny randomly initialised ViCLIP-style backbone (no downloads).

Exercises the whole loop in a few minutes on a laptop CPU: dataset generation, adapters, consistency
loss, checkpoints, validation-based selection, test evaluation, adapters.safetensors, results.json.
The embedded demo with a PRE-TRAINED tiny backbone is `bash launch/demo.sh`.

    python -m msta_jax.main --config=configs/tiny.py --workdir=runs/tiny

Args (comma separated): shots=N (the synthetic few-shot list), recipe=msta_jax|authors (configs/recipes.py).
"""
from configs import base
from configs import common
from configs import recipes


def get_config(arg: str | None = None):
  args = common.parse_arg(arg, shots=16, recipe='msta_jax')
  c = base.get_config()
  c.model.name, c.model.image_size, c.model.num_frames = 'tiny_viclip', 32, 8
  c.msta.first_block, c.msta.last_block, c.msta.bottleneck = 1, 2, 32
  c.msta.scale = 0.1   # Tiny random backbone: a larger lambda than ViCLIP-B's 0.005 (see configs/synthetic.py).
  c.data.update(dataset='synthetic', descriptions='metadata', data_dir='~/.cache/msta_jax/datasets',
                name='synthetic', train_split=f'few_shot_train_k{args.shots}', val_split='few_shot_val',
                test_splits=('few_shot_test',), num_threads=2,
                num_workers=0)  # Threads only: worker processes take seconds to start, the clips are tiny.
  # Direction and colour define the classes: no flips, no colour jitter, no grayscale, no crops.
  c.data.augment.update(crop_scale=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale=0.0)
  c.optim.update(epochs=6.0, warmup_epochs=1.0, lr=1e-3)
  c.batch_size = 32
  c.eval.update(every_epochs=2.0, batch_size=32, clips=1, crops=1, resize='squash')
  c.log_every_steps = 24
  c.sharding.fsdp_min_bytes = 2**12  # Tiny leaves: with --config.sharding.preset=fsdp the adapters split too.
  return recipes.apply(c, args.recipe)
