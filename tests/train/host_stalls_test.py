"""No host stalls in the training loop: the guard that proves no implicit transfer happens between logging
points (the training run under it is tests/train/trainer_test.py's, which shares that module's dataset),
the prefetching feed's state is that of the consumed batch, non-finite losses are caught on the device."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msta_jax.train import device_metrics
from msta_jax.train import feed as feed_lib


@pytest.fixture
def strict_fetch(monkeypatch):
  """The device-to-host guard, enforced on CPU too. The CPU backend hands a jax.Array's host buffer out
  without a copy, so jax's own check never fires there; every implicit fetch (`float`, `int`, `bool`,
  `np.asarray`, `.item()`) reads ArrayImpl._value, which here raises where the guard says 'disallow'
  unless inside an explicit `jax.device_get`, as it does on accelerators."""
  from jax._src import array, config
  from jax._src.lib import guard_lib
  value = array.ArrayImpl._value

  def checked(self):
    if (config.transfer_guard_device_to_host.value == 'disallow'
        and not guard_lib.thread_local_state().explicit_device_get):
      raise RuntimeError(f'Disallowed device-to-host transfer: implicit fetch of {self.aval}')
    return value.fget(self)
  monkeypatch.setattr(array.ArrayImpl, '_value', property(checked))


def test_the_guard_refuses_the_per_step_fetch_the_loop_used_to_make(strict_fetch):
  """The control for the test below: under the guard, `float(metrics['loss'])` (main's loop at b440921
  did this every step) raises; explicit `jax.device_get` does not."""
  loss = jnp.ones(()) * 2
  with jax.transfer_guard('disallow'):
    assert jax.device_get(loss) == 2
    with pytest.raises(Exception, match='Disallowed device-to-host transfer'):
      float(loss)
    with pytest.raises(Exception, match='Disallowed host-to-device transfer'):
      jax.jit(lambda x: x + 1)(np.ones(3, np.float32))


class _Counter:
  """A loader whose batches and states are the number of batches pulled so far."""

  def __init__(self):
    self.pulled = 0

  def __next__(self):
    self.pulled += 1
    return {'x': np.full(2, self.pulled, np.int32)}

  def get_state(self):
    return {'batches': self.pulled}


def test_feed_keeps_two_batches_ahead_and_reports_the_consumed_batchs_state():
  loader = _Counter()
  feed = feed_lib.DeviceFeed(loader, jax.device_put, depth=2)
  assert feed.get_state() == {'batches': 0}
  for k in range(1, 5):
    batch = next(feed)
    assert isinstance(batch['x'], jax.Array) and int(batch['x'][0]) == k
    assert loader.pulled == k + 2                     # Two batches on the device ahead of the step ...
    assert feed.get_state() == {'batches': k}         # ... but the state saved is the consumed batch's.


def test_non_finite_watch_names_the_first_bad_step_and_its_metrics():
  watch = device_metrics.NonFiniteWatch()
  assert watch.first_bad() is None
  for step, loss in enumerate([1.0, 0.5, np.nan, np.inf, 0.2], start=1):
    watch.update({'loss': jnp.float32(loss), 'grad_norm': jnp.float32(10 * step)}, jnp.int32(step))
    if step == 2:
      assert watch.first_bad() is None
  assert watch.first_bad() == (3, {'loss': pytest.approx(np.nan, nan_ok=True), 'grad_norm': 30.0})
