"""How a tool here runs as a program: absl flags, `main(argv) -> exit status`, `app.run`.

Tools with few, distinct flags define them on absl's global FLAGS and end with `app.run(main)`. Tools
that are imported side by side with others (tests, the protocol runner) and share flag names with other
meanings (--dataset, --protocol, --splits_dir, --workers) parse a private `flags.FlagValues` inside
`main(argv)` instead, and end with `cli.run(main)`: the same app.run (absl logging at INFO, the exit
status of main), with absl's own flags left at their defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from absl import app, flags


def _leave_to_main(argv: Sequence[str]) -> list[str]:
  flags.FLAGS.mark_as_parsed()  # absl's own flags keep their defaults; main parses everything.
  return list(argv)


HELP_FLAGS = ('--help', '-h', '-?', '--helpfull', '--helpshort')


def print_help_if_asked(argv: Sequence[str], doc: str, fv: flags.FlagValues) -> bool:
  """For tools with a private FlagValues (absl's --help knows only the global one): prints the usage and
  every flag when argv asks for help; True if it did (main then returns 0)."""
  if not any(a in HELP_FLAGS for a in argv[1:]):
    return False
  print(f'{doc.strip()}\n\nFlags:\n{fv.get_help()}')
  return True


QUIET_LIBRARIES = ('orbax', 'grain', 'tensorflow_datasets', 'tensorflow', 'array_record', 'etils')


class _QuietLibraries:
  """Drops INFO records of libraries that log every checkpoint or file operation (warnings still show)."""

  def filter(self, record) -> bool:
    return record.levelno > 20 or not any(f'/{lib}/' in record.pathname for lib in QUIET_LIBRARIES)


def quiet_libraries() -> None:
  """Library INFO chatter (Orbax, grain, TFDS, TensorFlow) off, ours kept; the programs' --verbose skips this."""
  import logging as py_logging  # pylint: disable=g-import-not-at-top
  from absl import logging
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _QuietLibraries) for f in handler.filters):
    handler.addFilter(_QuietLibraries())
  for name in QUIET_LIBRARIES:
    py_logging.getLogger(name).setLevel(py_logging.WARNING)


def quiet_tensorflow(argv: Sequence[str], *, onednn_banner: bool = False) -> None:
  """Before TensorFlow loads (TFDS, clu), unless --verbose: its C++ INFO lines off. `onednn_banner=True`
  also turns oneDNN off (TF_ENABLE_ONEDNN_OPTS=0), the only switch for its banner: for commands where
  TensorFlow computes nothing (reading and writing records). Both are defaults a user's environment overrides."""
  if '--verbose' in argv:
    return
  import os  # pylint: disable=g-import-not-at-top
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if onednn_banner:
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')


def run(main: Callable[[list[str]], int | None]) -> None:
  """app.run(main) for a tool whose `main(argv)` parses its own flags (argv[0] is the program)."""
  app.run(main, flags_parser=_leave_to_main)
