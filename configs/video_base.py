"""Shared settings of the real-video protocol configs (HMDB51, UCF101, SSv2, K400), on top of base.py.

Each protocol file (`*_fewshot.py`, `*_b2n.py`, `k400_zeroshot.py`, `k400_supervised.py`) holds only
which lists it trains and tests on and what its recipe changes; this module holds what they share:
the arguments below, backbone weights, dataset names, test views, and the method recipes.

Arguments every real-video config takes (comma separated, typed; unknown ones are errors):
  backbone=viclip|clip   ViCLIP-B/16 (joint space-time attention) or OpenAI CLIP ViT-B/16 applied to each
                         frame with the frame features averaged (default viclip)
  method=NAME            what trains: msta (default), msta_no_temporal_conv, frame_average, zero_shot, or any
                         other method of configs/methods.py but pretrain (baselines, ablations)
  init=PATH              backbone weights for models.load. Default: WEIGHTS[backbone] under
                         ~/.cache/msta_jax/weights/; `init=random` (or `init=`) trains on a seeded random init
  seed=N                 training seed (base-to-novel: also which of the 3 training lists)
  split_set=vifi|generated|subset   the ViFi-CLIP lists, our generated ones, or a class subset made by
                         `splits generate --classes=...` (docs/splits.md; default vifi)
  size=full|tiny         tiny: the smoke preset (configs/common.apply_size): a tiny random backbone and
                         small batches, to try a dataset end to end in minutes
  recipe=msta_jax|authors    our honest recipe (default) or the MSTA authors' way of training and
                         reporting, test-set selection included (configs/recipes.py, docs/parity.md)

The weights are checked when a run starts (msta_jax.train.from_config.validate), not here, so every
config builds on a machine without them; the message then says what to download (BUILD.md, "Pretrained
weights").
"""
from __future__ import annotations

from typing import Any

import ml_collections

from configs import base
from configs import common
from configs import methods
from configs import recipes

WEIGHTS_DIR = '~/.cache/msta_jax/weights'
WEIGHTS = {
    'viclip': f'{WEIGHTS_DIR}/ViCLIP-B_InternVid-FLT-10M.pth',   # InternVid's ViCLIP-B/16 release.
    'clip': f'{WEIGHTS_DIR}/clip-vit-base-patch16',             # HF openai/clip-vit-base-patch16, saved locally.
}
DATA_DIR = '~/tensorflow_datasets'
# Contrastive pre-training needs captions, which the labelled video datasets do not have.
METHODS = tuple(m for m in methods.METHODS if m != 'pretrain')
SPLIT_SETS = ('vifi', 'generated', 'subset')
# Test views (temporal clips x spatial crops) per dataset, as in the paper; zero-shot uses one view.
VIEWS = {'hmdb51': (10, 3), 'ucf101': (5, 3), 'k400': (4, 3), 'ssv2': (2, 3)}
# K400 zero-shot training and full supervision read the same lists, built once as `supervised`.
_SHARED_PROTOCOLS = {('k400', 'zero_shot'): 'supervised'}

# ViFi-CLIP's full fine-tuning recipe per protocol (github muzairkhattak/ViFi-CLIP @e2d1948,
# configs/{few_shot,base2novel,zero_shot/train,fully_supervised}/**/*vifi_clip*.yaml over the defaults of
# utils/config.py and utils/optimizer.py): AdamW betas (0.9, 0.98), weight decay 1e-3, cosine schedule with
# 5 warm-up epochs, label smoothing 0.1 (through its mixup/cutmix blending, which we do not implement).
VIFI_RECIPES = {
    'few_shot': dict(lr=2e-6, batch_size=64, epochs=50.0),
    'base2novel': dict(lr=2e-6, batch_size=64, epochs=11.0),
    'zero_shot': dict(lr=8e-6, batch_size=256, epochs=10.0),
    'supervised': dict(lr=2.2e-5, batch_size=512, epochs=30.0),
}


def parse(arg: str | None, seed: int = 0, **protocol_args: Any) -> ml_collections.ConfigDict:
  """The shared arguments (`seed` defaulting to `seed`) plus the protocol's own (e.g. shots=16), typed
  by their defaults."""
  a = common.parse_arg(arg, backbone='viclip', method='msta', init='default', seed=seed, split_set='vifi',
                       size='full', recipe='msta_jax', **protocol_args)
  common.choice('size', a.size, common.SIZES)
  common.choice('backbone', a.backbone, tuple(base.BACKBONES))
  common.choice('method', a.method, METHODS)
  common.choice('split_set', a.split_set, SPLIT_SETS)
  common.choice('recipe', a.recipe, tuple(recipes.RECIPES))
  return a


def dataset_name(dataset: str, protocol: str, split_set: str, definition: str | None = None) -> str:
  """config.data.name of a built list set: 'video_folder/<config>'.

  The same rule as msta_jax.data.builders.video_folder.config_name (configs import nothing of the
  package; tests/configs/configs_test.py checks that the two agree for every config).
  """
  protocol = _SHARED_PROTOCOLS.get((dataset, protocol), protocol)
  name = f'{dataset}_{split_set}_{protocol}'
  if (dataset, protocol) == ('k600', 'zero_shot'):
    name += '_' + (definition or ('mixed' if split_set == 'vifi' else 'val_only'))
  return f'video_folder/{name}'


def base_config(a: ml_collections.ConfigDict, *, dataset: str, protocol: str) -> ml_collections.ConfigDict:
  """base.py with the backbone, weights, seed, dataset and test views of `a`; splits are the caller's."""
  c = base.get_config()
  c.seed = a.seed
  c.optim.b2 = 0.98  # AdamW betas (0.9, 0.98) on every protocol: the authors' code base (ViFi-CLIP utils/optimizer.py).
  c.model.name = base.BACKBONES[a.backbone]
  c.model.init = WEIGHTS[a.backbone] if a.init == 'default' else ('' if a.init == 'random' else a.init)
  c.data.update(dataset=dataset, descriptions=dataset, data_dir=DATA_DIR,
                name=dataset_name(dataset, protocol, a.split_set))
  c.eval.clips, c.eval.crops = VIEWS[dataset]
  if dataset == 'ssv2':  # Classes name directions ('... from left to right'): a mirrored clip is another class.
    c.data.augment.flip = False
  return c


def few_shot(arg: str | None, dataset: str) -> ml_collections.ConfigDict:
  """K shots per class of split 1 (`shots` arg: 2, 4, 8 or 16), tested on split 1's test list."""
  a = parse(arg, shots=16)
  common.choice('shots', a.shots, (2, 4, 8, 16))
  c = base_config(a, dataset=dataset, protocol='few_shot')
  c.data.update(train_split=f'train_shots{a.shots}', val_split='heldout', test_splits=('test',))
  return finish(c, a, 'few_shot')


def base_to_novel(arg: str | None, dataset: str) -> ml_collections.ConfigDict:
  """16 shots of each base class (list `seed`, 1..3, also the training seed), tested on the base and
  the novel classes' test lists, each against its own class list; results.json adds their harmonic mean."""
  a = parse(arg, seed=1)
  common.choice('seed', a.seed, (1, 2, 3))
  c = base_config(a, dataset=dataset, protocol='base2novel')
  c.data.update(train_split=f'train_seed{a.seed}', val_split='heldout', test_splits=('base_val', 'novel_val'))
  c.eval.base_novel = ('base_val', 'novel_val')
  return finish(c, a, 'base2novel')


def finish(c: ml_collections.ConfigDict, a: ml_collections.ConfigDict, protocol: str) -> ml_collections.ConfigDict:
  """The last call of every protocol's get_config: the method (apply_method), then the recipe `a.recipe`."""
  return recipes.apply(apply_method(c, a.method, protocol, a.size), a.recipe)


def apply_method(c: ml_collections.ConfigDict, method: str, protocol: str,
                 size: str = 'full') -> ml_collections.ConfigDict:
  """configs/methods.py's changes, then the recipe a method brings with it, then the `size` preset.

  Call it last: `zero_shot` clears the training splits the protocol file set. Methods that fine-tune
  every weight (`frame_average`, which is ViFi-CLIP, and `full_finetune`) take ViFi-CLIP's recipe for
  this protocol, whose small learning rate is for exactly that; the adapter methods keep the MSTA
  authors' (base.py) or the protocol file's.
  """
  methods.apply(c, method)
  if tuple(map(tuple, c.freeze)) in (methods.ALL_TRAINABLE, methods.VIFI_CLIP):  # The backbone trains.
    r = VIFI_RECIPES[protocol]
    c.optim.update(lr=r['lr'], epochs=r['epochs'], warmup_epochs=5.0, weight_decay=1e-3, b2=0.98)
    c.batch_size = r['batch_size']
    c.loss.label_smoothing = 0.1
  return common.apply_size(c, size)
