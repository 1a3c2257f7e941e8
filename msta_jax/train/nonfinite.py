"""`optim.skip_nonfinite`: skip up to N steps whose loss or gradient is not finite, instead of stopping.

A skipped step leaves the whole state as it was (parameters, optimizer moments, step counter, RNG):
the guard selects the old state inside the compiled step, so nothing non-finite is ever kept or
saved. The skipped steps are recorded in the checkpoints' meta (a resumed run keeps counting) and
in results.json (`nonfinite_skipped`). With 0 (the default) the step is not wrapped at all and a
non-finite loss stops the run, as before.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from absl import logging


def guard(step_fn: Callable) -> Callable:
  """A train step that returns its input state unchanged when the loss or gradient norm is not finite."""
  def fn(state, frozen, batch, task):
    new, metrics = step_fn(state, frozen, batch, task)
    ok = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state), metrics
  return fn


class Skipper:
  """Counts skipped steps against the limit; `steps` is the list saved in meta and results."""

  def __init__(self, limit: int, steps: list[int]):
    self.limit, self.steps = limit, steps

  def skip(self, step: int, metrics: dict) -> bool:
    """True (and recorded) when step `step` may be skipped; False when the run must stop."""
    if len(self.steps) >= self.limit:
      return False
    self.steps.append(step)
    logging.warning('non-finite loss at step %d (%s): skipped, state unchanged (%d of at most %d)', step,
                    {k: float(v) for k, v in metrics.items()}, len(self.steps), self.limit)
    return True
