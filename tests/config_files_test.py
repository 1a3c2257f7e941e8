"""Config files, read one way: FILE.py[:args] plus --config.* overrides, locked; unknown keys named."""
import pytest

from msta_jax import config_files


def test_load_applies_args_and_overrides_and_locks():
  config = config_files.load('configs/hmdb_fewshot.py:shots=4', ['--config.optim.lr=5e-4',
                                                                  '--config.data.num_threads=2'])
  assert (config.data.train_split, config.optim.lr, config.data.num_threads) == ('train_shots4', 5e-4, 2)
  with pytest.raises(AttributeError):
    config.new_key = 1  # Locked, as `python -m msta_jax.main` locks it.


def test_unknown_keys_and_bad_arguments_are_named():
  with pytest.raises(ValueError, match=r"unknown config key 'optim.learning_rate' \(run-1\): config.optim has "
                                       r"\['accum_steps', 'b1', 'b2', 'epochs'"):
    config_files.load('configs/tiny.py', ['--config.optim.learning_rate=1'], where='run-1')
  with pytest.raises(ValueError, match=r"unknown config key 'msta.bottleneck.x': config.msta.bottleneck has \[\]"):
    config_files.check_argv(['main', '--config=configs/tiny.py', '--config.msta.bottleneck.x=1'])
  with pytest.raises(ValueError, match=r"unexpected arguments \['stray'\]"):
    config_files.load('configs/tiny.py', ['stray'])
  with pytest.raises(FileNotFoundError, match='--config=configs/nope.py: no such config file'):
    config_files.check_argv(['main', '--config=configs/nope.py'])
  config_files.check_argv(['main', '--workdir=x'])  # No --config: nothing to check here.
