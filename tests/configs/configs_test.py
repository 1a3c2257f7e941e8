"""Every config file, with every combination of its arguments, builds and validates without data or
weights; real-video configs name splits the video_folder builder actually stores."""
import glob
import importlib
import itertools
import json
import os

import pytest

from configs import common
from configs import video_base
from msta_jax import models
from msta_jax.train import from_config, partition

CONFIG_FILES = sorted(
    name for name in (os.path.basename(p)[:-3] for p in glob.glob('configs/*.py'))
    if not name.startswith('__') and hasattr(importlib.import_module(f'configs.{name}'), 'get_config')
    and name != 'base')

# Real-video configs and the values of their own arguments; every one also takes SHARED.
REAL = {
    'hmdb_fewshot': {'shots': (2, 4, 8, 16)}, 'ucf_fewshot': {'shots': (2, 4, 8, 16)},
    'ssv2_fewshot': {'shots': (2, 4, 8, 16)},
    'k400_b2n': {'seed': (1, 2, 3)}, 'hmdb_b2n': {'seed': (1, 2, 3)}, 'ucf_b2n': {'seed': (1, 2, 3)},
    'ssv2_b2n': {'seed': (1, 2, 3)},
    'k400_zeroshot': {'k600': ('default', 'mixed', 'val_only')},
    'k400_supervised': {},
}
# Every combination of these; every other method of configs/methods.py once (k400_b2n, default arguments).
CORE_METHODS = ('msta', 'msta_no_temporal_conv', 'frame_average', 'zero_shot')
# The subset split set names datasets like `generated` does: tested once per config, with size=tiny, below.
SHARED = {'backbone': ('viclip', 'clip'), 'method': CORE_METHODS, 'split_set': ('vifi', 'generated')}
PAPER_VIEWS = {'hmdb51': (10, 3), 'ucf101': (5, 3), 'k400': (4, 3), 'ssv2': (2, 3)}


def _combos(name: str):
  own = dict(REAL[name], **SHARED)
  keys = sorted(own)
  for values in itertools.product(*(own[k] for k in keys)):
    yield ','.join(f'{k}={v}' for k, v in zip(keys, values))
  if name == 'k400_b2n':  # The paper compares baselines and ablations on base-to-novel.
    yield from (f'method={m}' for m in video_base.METHODS if m not in CORE_METHODS)


# Sections that do not change the parameter tree: configs equal elsewhere share one abstract build.
_NOT_MODEL = ('data', 'eval', 'optim', 'loss', 'checkpoint', 'seed', 'method', 'batch_size', 'total_steps',
              'log_every_steps')
_ABSTRACT: dict[str, tuple[dict, int]] = {}


def _build(config) -> int:
  """Validates `config`, builds its model and optimizer abstractly; returns the trainable count. A
  full-size abstract build takes about a second, and many argument combinations share a model."""
  from_config.validate(config)
  model = {k: v for k, v in config.to_dict().items()  # Disabled modules do not change the tree.
           if k not in _NOT_MODEL and not (isinstance(v, dict) and v.get('enabled') is False)}
  key = json.dumps(model, sort_keys=True, default=str)
  if key not in _ABSTRACT:
    shapes = models.param_shapes(from_config.build_model(config))
    labels = partition.param_labels(shapes, config.freeze)
    _ABSTRACT[key] = labels, partition.count(partition.split(shapes, labels)[0])
  labels, trainable = _ABSTRACT[key]
  from_config.build_optimizer(config, labels, steps_per_epoch=10)
  return trainable


def test_every_real_video_config_is_covered():
  assert set(REAL) <= set(CONFIG_FILES)
  real = {n for n in CONFIG_FILES if 'video_base' in open(f'configs/{n}.py').read()}
  assert real == set(REAL), real ^ set(REAL)  # A new real-video config needs its argument values above.


@pytest.mark.parametrize('name', CONFIG_FILES)
def test_config_builds_and_validates(name):
  config = importlib.import_module(f'configs.{name}').get_config('init=random' if name in REAL else None)
  assert _build(config) > 0


@pytest.mark.parametrize('name', sorted(REAL))
def test_every_argument_combination_builds(name):
  module = importlib.import_module(f'configs.{name}')
  for arg in _combos(name):
    if 'k600=mixed' in arg and 'split_set=generated' in arg:
      with pytest.raises(ValueError, match="k600='mixed'; allowed"):
        module.get_config(arg)  # The generated split set has only the val_only K600 definition.
      continue
    c = module.get_config(arg + ',init=random')
    c.lock()
    trainable = _build(c)
    method = dict(kv.split('=') for kv in arg.split(','))['method']
    assert c.method == method
    if method == 'zero_shot':
      assert trainable == 0 and c.optim.epochs == 0 and not c.data.train_split
    elif method in ('frame_average', 'full_finetune'):  # (Nearly) every weight trains, at ViFi-CLIP's small rate.
      assert trainable > 80_000_000 and c.optim.lr < 1e-4, arg
      assert (c.model.video_mode == 'frame_average') == (method == 'frame_average'), arg
    elif method == 'msta' and name == 'k400_supervised':
      assert trainable == 8_712_192, arg  # d=256 in blocks 1..12 (msta.md)
    elif method == 'msta':
      assert trainable == 1_744_000, arg  # d=128 in blocks 8..12, the authors' logs
    views = (c.eval.clips, c.eval.crops)
    assert views == ((1, 1) if name == 'k400_zeroshot' else PAPER_VIEWS[c.data.dataset]), arg


@pytest.mark.parametrize('name', sorted(REAL))
def test_smoke_preset_on_a_subset_builds_a_tiny_model(name):
  """size=tiny sets every linked override at once: a tiny random backbone whose adapters fit its 2 layers,
  batches of 4 on one device, one view; the subset split set names its own datasets."""
  c = importlib.import_module(f'configs.{name}').get_config('split_set=subset,size=tiny')
  c.lock()
  assert (c.model.name, c.model.init, c.model.image_size, c.batch_size, c.eval.batch_size) == (
      'tiny_viclip', '', 32, 4, 4)
  assert (c.msta.first_block, c.msta.last_block, c.msta.bottleneck, c.msta.scale) == (1, 2, 32, 0.1)
  assert (c.eval.clips, c.eval.crops) == (1, 1) and dict(c.mesh) == {'data': 1, 'model': 1}
  assert c.data.name.startswith('video_folder/') and '_subset_' in c.data.name
  assert 0 < _build(c) < 100_000
  with pytest.raises(ValueError, match="size='huge'; allowed"):
    importlib.import_module(f'configs.{name}').get_config('size=huge')


def test_arguments_are_typed_and_checked():
  from configs import hmdb_fewshot, k400_b2n
  c = hmdb_fewshot.get_config('shots=4,backbone=clip,seed=3')
  assert (c.data.train_split, c.model.name, c.seed) == ('train_shots4', 'clip_b16', 3)
  assert k400_b2n.get_config().data.train_split == 'train_seed1'  # seed defaults to the first list
  with pytest.raises(ValueError, match="unknown config argument 'shot'"):
    hmdb_fewshot.get_config('shot=4')
  with pytest.raises(ValueError, match='is not a int'):
    hmdb_fewshot.get_config('shots=four')
  with pytest.raises(ValueError, match="shots=3; allowed"):
    hmdb_fewshot.get_config('shots=3')
  with pytest.raises(ValueError, match="seed=0; allowed"):
    k400_b2n.get_config('seed=0')
  with pytest.raises(ValueError, match="method='pretrain'; allowed"):
    hmdb_fewshot.get_config('method=pretrain')


def test_default_weights_are_checked_when_a_run_starts(tmp_path, monkeypatch):
  from configs import ssv2_fewshot
  monkeypatch.setenv('HOME', str(tmp_path))
  viclip, clip = ssv2_fewshot.get_config(), ssv2_fewshot.get_config('backbone=clip')
  assert viclip.model.init == '~/.cache/msta_jax/weights/ViCLIP-B_InternVid-FLT-10M.pth'
  assert clip.model.init == '~/.cache/msta_jax/weights/clip-vit-base-patch16'
  with pytest.raises(FileNotFoundError, match=r'Download them \(BUILD.md, "Pretrained weights"\) and pass '
                     r'--config.model.init=PATH, or train on a random init with --config.model.init=random'):
    from_config.validate(viclip)
  path = tmp_path / 'weights.pth'
  path.write_bytes(b'')
  from_config.validate(ssv2_fewshot.get_config(f'init={path}'))


def _stored_split_names(folder: str) -> set[str]:
  """What `python -m msta_jax.tools.build` stores for named config `folder` ('video_folder/<config>'),
  derived from the shipped layout the way video_folder.resolve names splits: a protocol split keeps its
  name when every option stores the same list, else gets the option suffix (`train_shots16`); the
  held-out list excludes every option's lists, so it is one `heldout`. The generated set has the same
  layout (video_folder.py)."""
  from msta_jax.data import splits
  from msta_jax.data.builders import video_folder
  assert folder.startswith('video_folder/'), folder
  named = {c.name: c for c in video_folder.VideoFolder.BUILDER_CONFIGS}
  cfg = named[folder.split('/', 1)[1]]  # KeyError: the config names a dataset the builder cannot build.
  assert video_base.dataset_name(cfg.dataset, cfg.protocol, cfg.split_set, cfg.definition) == folder
  assert video_folder.config_name(cfg.dataset, cfg.protocol, cfg.split_set, cfg.definition) == cfg.name
  manifest = 'val_only_k600' if cfg.definition == 'val_only' else 'vifi'
  with open(os.path.join(os.path.dirname(splits.__file__), 'assets', 'splits', f'{manifest}.json')) as f:
    spec = json.load(f)['protocols'][cfg.dataset][cfg.protocol]
  options = spec['options']
  grid = [dict(zip(sorted(options), v)) for v in itertools.product(*(options[k] for k in sorted(options)))]
  names = {'heldout'} if 'heldout' in spec else set()
  for name, s in spec['splits'].items():
    varies = grid and any('{' in s[k] for k in ('list', 'classes'))
    names |= {f'{name}_{video_folder._options_suffix(o)}' for o in grid} if varies else {name}
  return names


@pytest.mark.parametrize('name', sorted(REAL))
def test_split_names_are_the_builders(name):
  module = importlib.import_module(f'configs.{name}')
  for arg in _combos(name):
    if 'k600=mixed' in arg and 'split_set=generated' in arg:
      continue
    d = module.get_config(arg).data
    wanted = [(d.name, s) for s in (d.train_split, d.val_split) if s]
    wanted += [tuple(s.split(':', 1)) if ':' in s else (d.name, s) for s in d.test_splits]
    for folder, split in wanted:
      assert split in _stored_split_names(folder), (arg, folder, split)


def test_zero_shot_evaluates_three_splits_of_each_target():
  from configs import k400_zeroshot
  tests = k400_zeroshot.get_config('k600=val_only').data.test_splits
  assert tests[0] == 'video_folder/hmdb51_vifi_zero_shot:test_split1'
  assert tests[-1] == 'video_folder/k600_vifi_zero_shot_val_only:test_split3' and len(tests) == 9
  assert k400_zeroshot.get_config().data.test_splits[-1] == 'video_folder/k600_vifi_zero_shot_mixed:test_split3'
  assert k400_zeroshot.get_config().data.name == 'video_folder/k400_vifi_supervised'


def test_missing_dataset_and_weights_stop_at_once_naming_what_to_do(tmp_path, monkeypatch):
  from configs import ssv2_fewshot
  from msta_jax.data import pipeline
  from msta_jax.train import trainer
  monkeypatch.setenv('HOME', str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r'Download them .* pass --config.model.init=PATH'):
    trainer.train_and_evaluate(ssv2_fewshot.get_config('shots=4'), str(tmp_path / 'a'))
  c = ssv2_fewshot.get_config('shots=4,init=random')
  c.data.data_dir = str(tmp_path / 'tfds')
  with pytest.raises(pipeline.DatasetMissingError) as e:
    trainer.train_and_evaluate(c, str(tmp_path / 'b'))
  assert ('`python -m msta_jax.tools.build --dataset=ssv2 --protocol=few_shot --videos_dir=/path/to/ssv2/videos '
          f'--data_dir={tmp_path / "tfds"}`') in str(e.value)


def test_docstrings_carry_a_launch_line():
  for name in REAL:
    doc = importlib.import_module(f'configs.{name}').__doc__
    assert f'python -m msta_jax.main --config=configs/{name}.py' in doc, name


def test_parse_arg_is_typed_and_strict():
  args = common.parse_arg('shots=4,backbone=clip,flag=true', shots=16, backbone='viclip', flag=False)
  assert (args.shots, args.backbone, args.flag) == (4, 'clip', True)
  with pytest.raises(ValueError, match="unknown config argument 'shot'"):
    common.parse_arg('shot=4', shots=16)
  with pytest.raises(ValueError, match='is not a int'):
    common.parse_arg('shots=four', shots=16)
  with pytest.raises(ValueError, match='not key=value'):
    common.parse_arg('shots', shots=16)
  c = importlib.import_module('configs.ssv2_fewshot').get_config()
  c.lock()
  with pytest.raises(AttributeError):
    c.optim.learning_rate = 1.0  # A locked config rejects unknown keys.
