"""Learning-rate schedules by name (`config.optim.schedule`), counted in optimiser steps.

- 'cosine' (ours): optax's linear warm-up from 0, then cosine decay to 0 over the steps after it.
- 'timm_cosine' (the MSTA authors', through ViFi-CLIP `utils/optimizer.py`): timm's per-step
  `CosineLRScheduler` without warm-up prefix. With W warm-up steps, T total steps and
  lr_min = lr * `optim.lr_min_ratio`:  f(t) = t * lr / W for t < W, else
  lr_min + (lr - lr_min) * (1 + cos(pi * t / T)) / 2, and lr_min from T on. The cosine runs over ALL
  steps, so at t = W the lr drops from the warm-up line onto it.
- 'constant': linear warm-up, then lr.

`optim.lr_after_step` reproduces timm's stepping: ViFi-CLIP calls `step_update(i)` AFTER optimiser
update i, so update k (0-based) runs at f(max(k - 1, 0)) (update 0 at the warm-up start, 0).
`epoch_starts` gives f at the first step of each epoch, as the authors' logs print it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class Steps:
  """The step counts a schedule needs: warm-up W and total T."""
  warmup: int
  total: int


def steps(optim, steps_per_epoch: int, total_steps: int = 0) -> Steps:
  """W = round(warm-up epochs x steps per epoch) (< T), T = round(epochs x steps per epoch) or
  `total_steps` when set."""
  total = total_steps or max(int(round(optim.epochs * steps_per_epoch)), 1)
  warmup = max(min(int(round(optim.warmup_epochs * steps_per_epoch)), total - 1), 0)
  return Steps(warmup, total)


def _cosine(optim, s: Steps) -> optax.Schedule:
  if optim.get('lr_min_ratio', 0.0):
    raise ValueError(f"config.optim.lr_min_ratio={optim.lr_min_ratio}: only schedule 'timm_cosine' has a floor; "
                     "set it to 0 or use --config.optim.schedule=timm_cosine")
  return optax.warmup_cosine_decay_schedule(0.0, optim.lr, s.warmup, s.total, end_value=0.0)


def timm_cosine_value(t, *, lr: float, lr_min: float, warmup: int, total: int, xp: Any = jnp):
  """f(t) of timm's CosineLRScheduler (see the module docstring); `xp` is jnp (traced) or np (float64)."""
  t = xp.asarray(t, dtype=xp.float64 if xp is np else None)
  warm = t * (lr / max(warmup, 1))
  cos = lr_min + (lr - lr_min) * (1.0 + xp.cos(math.pi * t / total)) / 2.0
  return xp.where(t < warmup, warm, xp.where(t < total, cos, lr_min))


def _timm_cosine(optim, s: Steps) -> optax.Schedule:
  kw = dict(lr=optim.lr, lr_min=optim.lr * optim.lr_min_ratio, warmup=s.warmup, total=s.total)
  return lambda t: timm_cosine_value(t, **kw)


def _constant(optim, s: Steps) -> optax.Schedule:
  w = max(s.warmup, 1)
  return optax.join_schedules([optax.linear_schedule(0.0, optim.lr, w), optax.constant_schedule(optim.lr)], [w])


SCHEDULES: dict[str, Callable[[Any, Steps], optax.Schedule]] = {
    'cosine': _cosine, 'timm_cosine': _timm_cosine, 'constant': _constant}


def schedule(optim, steps_per_epoch: int, total_steps: int = 0) -> optax.Schedule:
  """f(t): the lr at schedule step t (not yet shifted by `lr_after_step`)."""
  if optim.schedule not in SCHEDULES:
    raise ValueError(f'config.optim.schedule={optim.schedule!r}; allowed: {sorted(SCHEDULES)}')
  return SCHEDULES[optim.schedule](optim, steps(optim, steps_per_epoch, total_steps))


def update_schedule(optim, steps_per_epoch: int, total_steps: int = 0) -> optax.Schedule:
  """The lr of optimiser update k: f(k), or f(max(k - 1, 0)) under `optim.lr_after_step` (timm)."""
  f = schedule(optim, steps_per_epoch, total_steps)
  if not optim.get('lr_after_step', False):
    return f
  return lambda k: f(jnp.maximum(k - 1, 0))


def epoch_starts(optim, steps_per_epoch: int, total_steps: int = 0) -> list[float]:
  """f(e x steps per epoch) for e = 0, 1, ... while e x steps per epoch < T: the lr that the authors'
  logs print at the first step of each epoch. timm_cosine in float64; others in optax's float32."""
  s = steps(optim, steps_per_epoch, total_steps)
  ts = list(range(0, s.total, max(steps_per_epoch, 1)))
  if optim.schedule == 'timm_cosine':
    return [float(v) for v in timm_cosine_value(np.asarray(ts), lr=optim.lr, lr_min=optim.lr * optim.lr_min_ratio,
                                                 warmup=s.warmup, total=s.total, xp=np)]
  f = schedule(optim, steps_per_epoch, total_steps)
  return [float(f(t)) for t in ts]
