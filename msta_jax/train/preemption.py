"""Preemption: a SIGTERM (or a TPU maintenance notice) becomes a checkpoint at a step every process
agrees on, then an exit with EXIT_CODE, which a launcher or scheduler can tell from a failure.

Where JAX runs its preemption sync manager (multi-process runs through jax.distributed, which also
hears the TPU maintenance notice), `multihost_utils.reached_preemption_sync_point` picks the step.
Elsewhere a SIGTERM handler sets a flag, and multi-process runs OR the flags of every process at
each step boundary, so all of them save the same step.
"""
from __future__ import annotations

import signal
import threading
import time

import numpy as np
from absl import logging
from jax._src import distributed  # The one place JAX says whether its preemption sync manager runs.
from jax.experimental import multihost_utils

EXIT_CODE = 75  # sysexits' EX_TEMPFAIL: "try again later"; a failure exits 1.


class Preempted(SystemExit):
  """Raised after the preemption checkpoint is written; `code` is EXIT_CODE."""

  def __init__(self, step: int, seconds: float):
    super().__init__(EXIT_CODE)
    self.step, self.seconds = step, seconds

  def __str__(self) -> str:
    return (f'preempted: saved step {self.step} {self.seconds:.1f} s after the notice; exit code {EXIT_CODE}. '
            'Run the same command again to resume.')


class Watch:
  """Call `reached(step)` at every step boundary, on every process."""

  def __init__(self, process_count: int):
    self.pcount = process_count
    self.noticed_at: float | None = None
    self._manager = distributed.global_state.preemption_sync_manager
    self._previous = None
    if self._manager is None and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)

  def _on_signal(self, signum, frame) -> None:
    del frame
    if self.noticed_at is None:
      self.noticed_at = time.monotonic()
      logging.warning('signal %d: saving a checkpoint at the next step boundary, then exiting with code %d',
                      signum, EXIT_CODE)

  def reached(self, step: int) -> bool:
    if self._manager is not None:
      stop = multihost_utils.reached_preemption_sync_point(step)
      if stop and self.noticed_at is None:
        self.noticed_at = time.monotonic()
      return stop
    if self.pcount > 1:
      return bool(np.any(multihost_utils.process_allgather(np.int32(self.noticed_at is not None))))
    return self.noticed_at is not None

  def stop(self, step: int) -> Preempted:
    self.close()
    exc = Preempted(step, time.monotonic() - (self.noticed_at or time.monotonic()))
    logging.warning('%s', exc)
    return exc

  def close(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
