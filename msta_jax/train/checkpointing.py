"""Training checkpoints: Orbax CheckpointManager, sharded and (optionally) async.

Two managers under the workdir: `checkpoints/` keeps the last N saves, `best/` keeps the one with the
best validation top-1. Each save holds three items:
- `state`: trainable params, optimizer state, step and RNG (sharded arrays; restored onto abstract
  targets that carry the CURRENT run's shardings, so a different mesh or device count works);
- `data`: the input iterator state (identical on every process by construction, saved once);
- `meta`: the config, the frozen backbone's source and fingerprint, and the eval history.
The frozen backbone is not copied into checkpoints: it is reloaded from its source, and a
fingerprint mismatch on resume is an error.

Faults (docs/reliability.md): a save that fails stops the run with the path and the OS error (the
steps committed before it stay restorable); a latest step that does not restore (a truncated or
missing file) is reported, moved to `corrupt_checkpoints/`, and the previous step is tried; when
steps exist but none restores, the run stops with what was found instead of starting from scratch.
Temporary folders of interrupted saves are reported and removed (Orbax's cleanup).
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from flax import traverse_util
from jax.experimental import multihost_utils

from msta_jax import paths
from msta_jax.train import faults

TMP_MARK = '.orbax-checkpoint-tmp'


class CheckpointError(RuntimeError):
  """A checkpoint could not be written, or none of the existing ones restores."""


def fingerprint(params: dict) -> str:
  """sha256 over sorted parameter paths, shapes, dtypes and bytes (host copies)."""
  h = hashlib.sha256()
  for path, leaf in sorted(traverse_util.flatten_dict(params, sep='/').items()):
    arr = np.asarray(jax.device_get(leaf))
    h.update(f'{path}:{arr.shape}:{arr.dtype}'.encode())
    h.update(np.ascontiguousarray(arr).tobytes())
  return h.hexdigest()


class Checkpointer:
  """The last `keep` checkpoints plus the best on validation."""

  def __init__(self, workdir: str, *, keep: int, async_save: bool):
    items = ('state', 'data', 'meta')
    self.workdir = paths.resolve(workdir)  # A gs:// URL stays one (paths.py); local paths become absolute.
    self.dirs = {k: self.workdir / k for k in ('checkpoints', 'best')}
    for d in self.dirs.values():
      leftovers = sorted(p.name for p in d.iterdir() if TMP_MARK in p.name) if d.is_dir() else []
      if leftovers:
        logging.warning('%s: unfinished saves of an interrupted run (Orbax removes them; committed steps are kept): %s',
                        d, leftovers)
    self.last = ocp.CheckpointManager(
        self.dirs['checkpoints'], item_names=items,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                             cleanup_tmp_directories=True))
    self.best = ocp.CheckpointManager(
        self.dirs['best'], item_names=items,
        options=ocp.CheckpointManagerOptions(max_to_keep=1, best_fn=lambda m: m['val_top1'], best_mode='max',
                                             enable_async_checkpointing=async_save, cleanup_tmp_directories=True))

  @staticmethod
  def _args(state, data, meta):
    return ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data),
                              meta=ocp.args.JsonSave(meta))

  def _guarded(self, what: str, fn, *args, **kwargs):
    """Runs a save (or the wait for async ones): any error stops the run naming the folder, the
    error and the steps that were committed before it."""
    try:
      return fn(*args, **kwargs)
    except Exception as e:  # Orbax and TensorStore wrap OS errors in their own types.
      kept = {k: list(m.all_steps()) for k, m in (('checkpoints', self.last), ('best', self.best))}
      raise CheckpointError(f'{what} failed: {type(e).__name__}: {e}. Committed before it '
                            f'and still restorable: {kept}. Free space or fix permissions, then run the same '
                            'command again to resume.') from e

  def save(self, step: int, state, data: dict, meta: dict) -> None:
    self._guarded('an earlier asynchronous checkpoint write', self.last.check_for_errors)
    self._guarded(f'writing {self.dirs["checkpoints"]}/{step}', self.last.save, step,
                  args=self._args(state, data, meta))
    faults.hit('during_save', step)

  def save_best(self, step: int, state, data: dict, meta: dict, val_top1: float) -> None:
    self._guarded('an earlier asynchronous checkpoint write', self.best.check_for_errors)
    self._guarded(f'writing {self.dirs["best"]}/{step}', self.best.save, step,
                  args=self._args(state, data, meta), metrics={'val_top1': float(val_top1)})

  @staticmethod
  def _restore(manager: ocp.CheckpointManager, step: int, abstract_state) -> tuple[Any, dict, dict]:
    got = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
    return got['state'], got['data'], got['meta']

  def latest_step(self) -> int | None:
    return self.last.latest_step()

  def restore_latest(self, abstract_state):
    """The newest step that restores; steps newer than it that do not are reported and moved to
    `corrupt_checkpoints/` (so the resumed run can write those steps again)."""
    steps = sorted(self.last.all_steps(), reverse=True)
    bad: list[tuple[int, str]] = []
    for step in steps:
      try:
        got = (step,) + self._restore(self.last, step, abstract_state)
      except Exception as e:  # Orbax, TensorStore and JSON errors all mean "this step is unusable".
        bad.append((step, f'{type(e).__name__}: {" ".join(str(e).split())[:300]}'))  # One line in the log.
        logging.warning('%s/%d does not restore (%s); trying the previous step', self.dirs['checkpoints'], step,
                        bad[-1][1])
        continue
      if bad:
        self._quarantine([b for b, _ in bad])
        logging.warning('resuming from step %d; unusable newer steps moved to %s/corrupt_checkpoints: %s',
                        step, self.workdir, bad)
      return got
    if bad:
      raise CheckpointError(f'{self.dirs["checkpoints"]} holds steps {steps} and none restores: '
                            + '; '.join(f'step {s}: {why}' for s, why in bad)
                            + '. Not starting from scratch over them: move the folder away (or use a new workdir) '
                            'to start afresh.')
    return None

  def _quarantine(self, steps: list[int]) -> None:
    """Moves unusable steps out of the managers' sight (process 0; the others wait for it)."""
    if jax.process_index() == 0:
      dest = self.workdir / 'corrupt_checkpoints'
      dest.mkdir(parents=True, exist_ok=True)
      for step in steps:  # A rename on disk; on an object store, object by object.
        (self.dirs['checkpoints'] / str(step)).rename(dest / f'{step}.{time.strftime("%Y%m%d-%H%M%S")}')
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices('msta_jax: corrupt checkpoints moved')
    self.last.reload()

  def best_step(self) -> int | None:
    return self.best.best_step()

  def restore_best(self, abstract_state):
    step = self.best.best_step()
    return None if step is None else (step,) + self._restore(self.best, step, abstract_state)

  def wait(self) -> None:
    self._guarded('finishing the checkpoint writes', self.last.wait_until_finished)
    self._guarded('finishing the best-checkpoint writes', self.best.wait_until_finished)

  def close(self) -> None:
    self.last.close()
    self.best.close()


class Periodic:
  """Checkpoints independent of evaluation: every N steps and/or every M minutes (0 = off), so a
  fault loses at most that much work. The minutes rule uses process 0's clock, broadcast, so every
  process saves the same step."""

  def __init__(self, every_steps: int, every_minutes: float, process_count: int):
    self.every_steps, self.seconds, self.pcount = every_steps, every_minutes * 60, process_count
    self.since = time.monotonic()

  def due(self, step: int) -> bool:
    if self.every_steps and step % self.every_steps == 0:
      return True
    if not self.seconds:
      return False
    late = time.monotonic() - self.since >= self.seconds
    if self.pcount > 1:
      late = bool(multihost_utils.broadcast_one_to_all(np.int32(late)))
    return late

  def saved(self) -> None:
    self.since = time.monotonic()
