"""Every config file builds and validates without compiling; arguments are typed and checked."""
import glob
import importlib
import os

import jax
import pytest

from configs import common
from msta_jax import models
from msta_jax.train import builders, partition

CONFIG_FILES = sorted(os.path.basename(p)[:-3] for p in glob.glob('configs/*.py')
                      if not os.path.basename(p).startswith(('__', 'common', 'base')))


@pytest.mark.parametrize('name', CONFIG_FILES)
def test_config_builds_and_validates(name):
  config = importlib.import_module(f'configs.{name}').get_config()
  model = builders.build_model(config)
  shapes = models.param_shapes(model)
  labels = partition.param_labels(shapes, config.freeze)
  trainable, _ = partition.split(shapes, labels)
  assert partition.count(trainable) > 0
  builders.build_optimizer(config, labels, steps_per_epoch=10)


def test_parse_arg_is_typed_and_strict():
  args = common.parse_arg('shots=4,backbone=clip,flag=true', shots=16, backbone='viclip', flag=False)
  assert (args.shots, args.backbone, args.flag) == (4, 'clip', True)
  with pytest.raises(ValueError, match="unknown config argument 'shot'"):
    common.parse_arg('shot=4', shots=16)
  with pytest.raises(ValueError, match='is not a int'):
    common.parse_arg('shots=four', shots=16)
  with pytest.raises(ValueError, match='not key=value'):
    common.parse_arg('shots', shots=16)


def test_ssv2_fewshot_args():
  from configs import ssv2_fewshot
  c = ssv2_fewshot.get_config('shots=4,backbone=clip')
  assert (c.data.shots, c.model.name) == (4, 'clip_b16')
  with pytest.raises(ValueError, match='allowed'):
    ssv2_fewshot.get_config('shots=3')
  with pytest.raises(AttributeError):
    c.lock()
    c.optim.learning_rate = 1.0  # A locked config rejects unknown keys.
