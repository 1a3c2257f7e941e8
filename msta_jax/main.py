"""Entry point: python -m msta_jax.main --config=configs/FILE.py[:args] --workdir=DIR [--config.a.b=v]

Multi-process (GPU hosts, TPU pods): every process runs the same command; on TPU pods JAX finds its
peers itself (--distributed), elsewhere give --coordinator_address, --num_processes and --process_id.
"""
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (and :args).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.', required=True)
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'jax.distributed.initialize() with auto-detection.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process (0-based).')


def init_distributed() -> None:
  """The one place that starts multi-process JAX."""
  import jax
  if _COORDINATOR.value is not None:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize()


class _QuietLibraries:
  """Drops INFO records of libraries that log every checkpoint operation (warnings still show)."""

  def filter(self, record) -> bool:
    return record.levelno > 20 or not any(f'/{lib}/' in record.pathname for lib in ('orbax', 'grain'))


def main(argv: list[str]) -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _CONFIG.value is None:
    raise app.UsageError('--config is required, e.g. --config=configs/tiny.py')
  init_distributed()
  import jax
  from msta_jax.train import trainer
  logging.info('JAX %s: process %d of %d, %d local / %d global devices (%s)', jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


def check_overrides(argv: list[str]) -> None:
  """Rejects unknown --config.* keys with the allowed ones, before absl's parser raises a bare
  AttributeError."""
  import importlib.util
  import sys
  spec = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  if spec is None:
    return
  path, _, arg = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('_msta_config', path)
  if module_spec is None or not __import__('os').path.exists(path):
    sys.exit(f'--config={spec}: no such config file')
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  for a in argv:
    if not a.startswith('--config.'):
      continue
    node, keys = config, a[len('--config.'):].split('=', 1)[0].split('.')
    for i, key in enumerate(keys):
      if not hasattr(node, 'keys') or key not in node:
        where = '.'.join(['config'] + keys[:i])
        allowed = sorted(node.keys()) if hasattr(node, 'keys') else []
        sys.exit(f'unknown config key {".".join(keys)!r}: {where} has {allowed}')
      node = node[key]


if __name__ == '__main__':
  import sys
  sys.path.insert(0, '.')  # configs/ import their shared modules as `configs.*` from the repo root.
  check_overrides(sys.argv)
  app.run(main)
