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


def run(main: Callable[[list[str]], int | None]) -> None:
  """app.run(main) for a tool whose `main(argv)` parses its own flags (argv[0] is the program)."""
  app.run(main, flags_parser=_leave_to_main)
