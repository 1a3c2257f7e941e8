"""Entry point: python -m msta_jax.main --config=configs/FILE.py[:args] --workdir=DIR [--config.a.b=v]

Multi-process (GPU hosts, TPU pods): every process runs the same command; on TPU pods JAX finds its
peers itself (--distributed), elsewhere give --coordinator_address, --num_processes and --process_id.
"""
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from msta_jax import config_files
from msta_jax.data import counts
from msta_jax.data import pipeline
from msta_jax.tools import cli
from msta_jax.train import from_config
from msta_jax.train import trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (and :args).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.', required=True)
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'jax.distributed.initialize() with auto-detection.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process (0-based).')
_VERBOSE = flags.DEFINE_bool('verbose', False, 'Library INFO logs (Orbax, grain) and full tracebacks of '
                             'configuration and data errors (default: one line).')
# What a user fixes with a flag or a file: printed as one line, not a traceback (unless --verbose).
USER_ERRORS = (counts.PartialDatasetError, pipeline.DatasetMissingError, FileNotFoundError)


def init_distributed() -> None:
  """The one place that starts multi-process JAX. A peer silent for `distributed.peer_timeout_s`
  (dead, or its host gone) makes the coordination service stop every process with an error naming
  it, instead of the others hanging in a collective."""
  timeout = {'heartbeat_timeout_seconds': int(_CONFIG.value.distributed.peer_timeout_s)}
  if _COORDINATOR.value is not None:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, **timeout)
  elif _DISTRIBUTED.value:
    jax.distributed.initialize(**timeout)


def main(argv: list[str]) -> None:
  if not _VERBOSE.value:
    cli.quiet_libraries()
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _CONFIG.value is None:
    raise app.UsageError('--config is required, e.g. --config=configs/tiny.py')
  init_distributed()
  logging.info('JAX %s: process %d of %d, %d local / %d global devices (%s)', jax.__version__,
               jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)
  try:
    try:
      from_config.validate(_CONFIG.value)
    except ValueError as e:
      raise _ConfigError(str(e)) from e
    trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except USER_ERRORS + (_ConfigError,) as e:
    if _VERBOSE.value:
      raise
    sys.exit(f'error: {e} (--verbose for the traceback)')


class _ConfigError(ValueError):
  """from_config.validate refused the config."""


if __name__ == '__main__':
  cli.quiet_tensorflow(sys.argv)
  try:  # Unknown --config.* keys fail here with the keys that exist, before absl's bare AttributeError.
    config_files.check_argv(sys.argv)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(str(e))
  app.run(main)
