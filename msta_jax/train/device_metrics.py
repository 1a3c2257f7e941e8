"""Non-finite losses watched on the device, so the loop never waits for a loss to reach the host.

The step's metrics stay on the device; after each step a tiny jitted update records the first step
whose loss was not finite and that step's metrics. The loop reads this (one small explicit transfer) at
logging points and before every checkpoint save, so a NaN state is never saved and the run stops
naming the step where the loss first went bad, as it did when it fetched the loss every step.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


@jax.jit
def _init(metrics: dict[str, jax.Array], step: jax.Array) -> dict[str, Any]:
  """Zeros made in the compiled program (eager zeros would be a host-to-device transfer)."""
  return {'step': jnp.zeros_like(step), 'metrics': jax.tree.map(jnp.zeros_like, metrics)}


@jax.jit
def _update(seen: dict[str, Any], metrics: dict[str, jax.Array], step: jax.Array) -> dict[str, Any]:
  first = ~jnp.isfinite(metrics['loss']) & (seen['step'] == 0)
  return {'step': jnp.where(first, step, seen['step']),
          'metrics': jax.tree.map(lambda new, old: jnp.where(first, new, old), metrics, seen['metrics'])}


class NonFiniteWatch:
  """The first non-finite loss since the run (re)started: its step (1-based) and the step's metrics."""

  def __init__(self):
    self._seen = None

  def update(self, metrics: dict[str, jax.Array], step: jax.Array) -> None:
    """`step`: the state's step counter after the step (on the device), i.e. the step's 1-based number."""
    if self._seen is None:
      self._seen = _init(metrics, step)
    self._seen = _update(self._seen, metrics, step)

  def first_bad(self) -> tuple[int, dict[str, float]] | None:
    """(step, metrics as floats) of the first non-finite loss, or None; waits for the steps so far."""
    if self._seen is None:
      return None
    seen = jax.device_get(self._seen)
    if int(seen['step']) == 0:
      return None
    return int(seen['step']), {k: float(v) for k, v in seen['metrics'].items()}
