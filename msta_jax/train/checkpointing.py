"""Training checkpoints: Orbax CheckpointManager, sharded and (optionally) async.

Two managers under the workdir: `checkpoints/` keeps the last N saves, `best/` keeps the one with the
best validation top-1. Each save holds three items:
- `state`: trainable params, optimizer state, step and RNG (sharded arrays; restored onto abstract
  targets that carry the CURRENT run's shardings, so a different mesh or device count works);
- `data`: the input iterator state (identical on every process by construction, saved once);
- `meta`: the config, the frozen backbone's source and fingerprint, and the eval history.
The frozen backbone is not copied into checkpoints: it is reloaded from its source, and a
fingerprint mismatch on resume is an error.
"""
from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util

from msta_jax import paths


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
    self.last = ocp.CheckpointManager(
        paths.resolve(workdir) / 'checkpoints', item_names=items,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save))
    self.best = ocp.CheckpointManager(
        paths.resolve(workdir) / 'best', item_names=items,
        options=ocp.CheckpointManagerOptions(max_to_keep=1, best_fn=lambda m: m['val_top1'], best_mode='max',
                                             enable_async_checkpointing=async_save))

  @staticmethod
  def _args(state, data, meta):
    return ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data),
                              meta=ocp.args.JsonSave(meta))

  def save(self, step: int, state, data: dict, meta: dict) -> None:
    self.last.save(step, args=self._args(state, data, meta))

  def save_best(self, step: int, state, data: dict, meta: dict, val_top1: float) -> None:
    self.best.save(step, args=self._args(state, data, meta), metrics={'val_top1': float(val_top1)})

  @staticmethod
  def _restore(manager: ocp.CheckpointManager, step: int, abstract_state) -> tuple[Any, dict, dict]:
    got = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
    return got['state'], got['data'], got['meta']

  def latest_step(self) -> int | None:
    return self.last.latest_step()

  def restore_latest(self, abstract_state):
    step = self.last.latest_step()
    return None if step is None else (step,) + self._restore(self.last, step, abstract_state)

  def best_step(self) -> int | None:
    return self.best.best_step()

  def restore_best(self, abstract_state):
    step = self.best.best_step()
    return None if step is None else (step,) + self._restore(self.best, step, abstract_state)

  def wait(self) -> None:
    self.last.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.last.close()
    self.best.close()
