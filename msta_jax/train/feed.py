"""The step's input: global batches put on the device ahead of the step, with the loader state of each,
and the step that normalises their uint8 pixels on the device.

Prefetching means the loader runs ahead of the step, so its own state is that of a batch not yet
trained on; a checkpoint must record the state after the last batch the step CONSUMED. The feed keeps
each batch's state beside it and hands out the consumed one (`get_state`), so resuming replays exactly
the batches that were prefetched but never trained on.
"""
from __future__ import annotations

import collections
from typing import Any, Callable

import jax

from msta_jax.data import normalize, pipeline


class DeviceFeed:
  """Iterator of global device batches, `depth` of them transferred ahead of the one being consumed.

  The transfers (explicit, asynchronous) overlap the running step: the loop never waits on the device
  between logging points, so the host pulls batch k+depth while the device computes step k."""

  def __init__(self, loader, to_device: Callable[[dict], dict], depth: int = 2):
    self._loader, self._to_device, self._depth = loader, to_device, depth
    self._queue: collections.deque = collections.deque()
    self._state = loader.get_state()

  def __iter__(self) -> 'DeviceFeed':
    return self

  def __next__(self) -> dict[str, jax.Array]:
    while len(self._queue) <= self._depth:
      self._queue.append((self._to_device(next(self._loader)), self._loader.get_state()))
    batch, self._state = self._queue.popleft()
    return batch

  def get_state(self) -> dict[str, Any]:
    """The loader state after the last batch `next` handed out (not after those prefetched)."""
    return self._state


def normalizing_step(step_fn: Callable, clip: pipeline.ClipSpec) -> Callable:
  """step_fn taking the wire's pixels: 'video' is normalised on the device (normalize.model_input, rule
  'train') before the step sees it, bit-identical to the host normalisation it replaces."""
  def fn(state, frozen, batch, task):
    batch = dict(batch, video=normalize.model_input(batch['video'], clip.mean, clip.std, 'train'))
    return step_fn(state, frozen, batch, task)
  return fn


def wire_batch(batch_abstract: dict[str, Any], video_dtype) -> dict[str, Any]:
  """The step's abstract batch with 'video' in the loader's wire dtype (uint8, or float32 0..1)."""
  v = batch_abstract['video']
  return dict(batch_abstract, video=jax.ShapeDtypeStruct(v.shape, video_dtype, sharding=v.sharding))
