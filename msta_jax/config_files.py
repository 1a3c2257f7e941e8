"""Config files, read one way everywhere: `FILE.py[:args]` plus `--config.a.b=v` overrides, locked.

`python -m msta_jax.main` parses its --config flag with ml_collections' config_flags; the protocol runner
builds every member's config with `load`, through the same parser. Both check the override keys here
first (`check_overrides`), because config_flags answers an unknown key with a bare AttributeError; this
error names the key and what its section has.

    config = config_files.load('configs/hmdb_fewshot.py:shots=4', ['--config.optim.lr=5e-4'])
"""
from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence

import ml_collections
from absl import flags
from ml_collections import config_flags

OVERRIDE_PREFIX = '--config.'


def _import_root(path: str) -> None:
  """Config files import their shared modules as `configs.*`: the folder above configs/ goes on sys.path."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
  if root not in sys.path:
    sys.path.insert(0, root)


def read(spec: str) -> ml_collections.ConfigDict:
  """`FILE.py[:args]` -> get_config(args) of FILE, without overrides, unlocked."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'--config={spec}: no such config file')
  _import_root(path)
  module_spec = importlib.util.spec_from_file_location('_msta_config_file', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def check_override_form(overrides: Sequence[str]) -> None:
  """Raises ValueError unless every item is a `--config.KEY=VALUE` flag."""
  bad = [o for o in overrides if not (o.startswith(OVERRIDE_PREFIX) and '=' in o)]
  if bad:
    raise ValueError(f'unexpected arguments {bad}: overrides are --config.KEY=VALUE')


def check_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str], where: str = '') -> None:
  """Raises ValueError on the first `--config.a.b=v` whose key `config` does not have, naming the keys
  its section has. `where` (a run's name) goes into the message."""
  for override in overrides:
    keys = override[len(OVERRIDE_PREFIX):].split('=', 1)[0].split('.')
    node = config
    for i, key in enumerate(keys):
      if not hasattr(node, 'keys') or key not in node:
        allowed = sorted(node.keys()) if hasattr(node, 'keys') else []
        place = f' ({where})' if where else ''
        raise ValueError(f'unknown config key {".".join(keys)!r}{place}: '
                         f'{".".join(["config"] + keys[:i])} has {allowed}')
      node = node[key]


def check_argv(argv: Sequence[str]) -> None:
  """For a program with a --config flag: checks its --config.* overrides against the file before absl
  parses them. Raises ValueError (unknown key) or FileNotFoundError; does nothing without --config."""
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  if spec is not None:
    check_overrides(read(spec), [a for a in argv if a.startswith(OVERRIDE_PREFIX)])


def load(spec: str, overrides: Sequence[str] = (), where: str = '') -> ml_collections.ConfigDict:
  """The locked config of `FILE.py[:args]` with `--config.a.b=v` overrides applied, parsed exactly as
  `python -m msta_jax.main` parses its flags (ml_collections' config_flags on a private registry)."""
  check_override_form(overrides)
  check_overrides(read(spec), overrides, where)
  argv = ['config_files', f'--config={spec}', *overrides]
  fv = flags.FlagValues()
  # sys_argv: config_flags registers the override flags it finds there (by default in sys.argv).
  config_flags.DEFINE_config_file('config', None, 'Config file.', flag_values=fv, lock_config=True, sys_argv=argv)
  with warnings.catch_warnings():  # ml_collections loads the file with the deprecated load_module().
    warnings.filterwarnings('ignore', 'the load_module', DeprecationWarning)
    fv(argv)
  return fv.config
