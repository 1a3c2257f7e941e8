"""Deterministic fault hooks: a test names a point of the run and the process dies exactly there.

Random kill timing proves little (it mostly lands in the train step); a named point proves the one
thing it names. The environment variable MSTA_JAX_FAULT holds comma-separated `point[:step]` entries,
e.g. `kill_during_save:12` or `kill_after_step:3,kill_during_export`. Each point is a call
`faults.hit(point, step)` in the trainer or the checkpointer (`faults.batch` for the training batch);
without the variable a call costs one dictionary lookup. It is an environment variable, not a config key, so the restart of a killed run
is the same command with the same config.

What a point does is in its prefix (`ACTIONS`): `kill_` SIGKILLs the process (nothing runs after it:
no finally, no atexit, no flush), `term_` sends it SIGTERM (the preemption path, handled like a
scheduler's notice), `fsize_` caps the size of the files it may write at 0 bytes (RLIMIT_FSIZE: every later
write of data fails with the real OS error EFBIG, the stand-in for a full disk); `nan_batch:N`
makes the video of step N's batch NaN (a non-finite loss at a known step).
"""
from __future__ import annotations

import functools
import os
import resource
import signal
from typing import Any, Callable

import numpy as np

ENV = 'MSTA_JAX_FAULT'

# Where the hooks sit (the trainer and the checkpointer call `hit` with these names).
POINTS = {
    'after_step': 'after train step N returned, before anything of step N is saved',
    'during_save': 'while the checkpoint of step N is being written (async write started, not committed)',
    'during_eval': 'after the validation evaluation of step N, before its checkpoints are written',
    'during_test': 'after the first test split was scored and its logits written, before the others',
    'during_export': 'after adapters.safetensors was written, before results.json',
    'batch': 'the training batch of step N (only with the nan_ action)',
}


def _fsize_cap() -> None:
  # Python ignores SIGXFSZ, so a write past the cap fails with OSError(EFBIG) instead of killing us.
  resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


ACTIONS: dict[str, Callable[[], None]] = {
    'kill': lambda: os.kill(os.getpid(), signal.SIGKILL),
    'term': lambda: os.kill(os.getpid(), signal.SIGTERM),
    'fsize': _fsize_cap,
    'nan': lambda: None,  # Acts on data: `batch`.
}


@functools.lru_cache(maxsize=8)
def parse(spec: str) -> list[tuple[str, str, int | None]]:
  """'kill_during_save:12,term_after_step:5' -> [(action, point, step or None), ...]; unknown names
  raise naming what exists."""
  out = []
  for entry in filter(None, (e.strip() for e in spec.split(','))):
    name, _, arg = entry.partition(':')
    action, _, point = name.partition('_')
    if action not in ACTIONS or point not in POINTS:
      raise ValueError(f'{ENV}={spec!r}: unknown fault {name!r}; faults are <action>_<point>[:N] with actions '
                       f'{sorted(ACTIONS)} and points {sorted(POINTS)}')
    if (action == 'nan') != (point == 'batch'):
      raise ValueError(f'{ENV}={spec!r}: {name!r}: the nan_ action goes with the batch point only')
    out.append((action, point, int(arg) if arg else None))
  return tuple(out)


def _active() -> tuple[tuple[str, str, int | None], ...]:
  return parse(os.environ.get(ENV, ''))


def hit(point: str, step: int | None = None) -> None:
  """Fires the faults set for `point` (at `step`, when the entry names one)."""
  for action, where, at in _active():
    if where == point and (at is None or at == step):
      ACTIONS[action]()


def batch(step: int, local: dict[str, Any]) -> dict[str, Any]:
  """The training batch of step `step`, its video NaN where `nan_batch:step` is set."""
  if any(where == 'batch' and at in (None, step) for _, where, at in _active()):
    if np.issubdtype(local['video'].dtype, np.floating):
      return dict(local, video=np.full_like(local['video'], np.nan))
    return dict(local, mask=np.full_like(local['mask'], np.nan))  # uint8 pixels hold no NaN; the loss weights do.
  return local
