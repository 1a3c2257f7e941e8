"""Sharding presets and rules, optimizer moments that follow their parameters, host copies, and the
batch rule that pads any global batch to the mesh."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from configs import base
from msta_jax.train import batching, partition, sharding


def _mesh(data=8, model=1):
  c = base.get_config()
  c.mesh = (('data', data), ('model', model))
  return sharding.make_mesh(c)


def _cfg(preset='fsdp', rules=(), min_bytes=1024):
  return ml_collections.ConfigDict(dict(preset=preset, rules=rules, fsdp_min_bytes=min_bytes))


def _specs(tree, cfg, mesh):
  out = sharding.param_shardings(tree, cfg, mesh)
  return {'/'.join(p.key for p in path): s.spec for path, s in jax.tree_util.tree_leaves_with_path(out)}


PARAMS = {'a': {'kernel': jnp.zeros((64, 24)), 'bias': jnp.zeros((64,))},
          'b': {'kernel': jnp.zeros((3, 128))}, 'odd': jnp.zeros((5, 7, 9)), 'small': jnp.zeros((8, 8))}


def test_fsdp_shards_the_largest_divisible_dimension_of_large_leaves():
  specs = _specs(PARAMS, _cfg(), _mesh())
  assert specs == {'a/kernel': P('data'), 'a/bias': P(), 'b/kernel': P(None, 'data'), 'odd': P(), 'small': P()}
  assert set(_specs(PARAMS, _cfg('replicated'), _mesh()).values()) == {P()}
  assert set(_specs(PARAMS, _cfg(), _mesh(1, 1)).values()) == {P()}  # One device on 'data': nothing to split.


def test_rules_come_before_the_preset_and_bad_values_are_named():
  specs = _specs(PARAMS, _cfg(rules=(('a/.*', ()), ('b/kernel', (None, 'model')))), _mesh(4, 2))
  assert specs['a/kernel'] == P() and specs['b/kernel'] == P(None, 'model')
  with pytest.raises(ValueError, match=r"config.sharding.preset='zero'; allowed: \['fsdp', 'replicated'\]"):
    sharding.check(_cfg('zero'))
  with pytest.raises(ValueError, match=r'config.sharding=\(\(.*expected a ConfigDict with preset'):
    sharding.check((('.*', ()),))
  with pytest.raises(ValueError, match=r'rules put odd \(5, 7, 9\) dim 0 on mesh axis .data. of size 8: not divisible'):
    sharding.param_shardings(PARAMS, _cfg(rules=(('odd', ('data',)),)), _mesh())


def test_optimizer_moments_follow_their_parameters():
  mesh = _mesh()
  labels = partition.param_labels(PARAMS, (('a/.*', 'trainable'), ('b/.*', 'trainable'), ('.*', 'frozen')))
  trainable, frozen = partition.split(PARAMS, labels)
  tx = partition.make_optimizer(labels, optax.adamw(1e-3))
  state = jax.eval_shape(lambda: {'opt': tx.init(partition.merge(trainable, frozen))})
  sh = sharding.state_shardings(state, sharding.param_shardings(trainable, _cfg(), mesh), mesh)
  specs = [(jax.tree_util.keystr(p), s.spec, leaf.shape) for (p, s), leaf in
           zip(jax.tree_util.tree_leaves_with_path(sh['opt']), jax.tree.leaves(state['opt']))]
  sharded = [(k, spec) for k, spec, _ in specs if spec != P()]
  assert len(sharded) == 4, specs  # mu and nu of a/kernel and b/kernel.
  assert {spec for _, spec in sharded} == {P('data'), P(None, 'data')}
  assert all(shape == () for _, spec, shape in specs if 'count' in _ and spec == P())


def test_to_host_copies_sharded_and_replicated_arrays():
  mesh = _mesh()
  x = jax.device_put(jnp.arange(64.0).reshape(8, 8), jax.sharding.NamedSharding(mesh, P('data')))
  assert sharding.is_sharded(x)
  out = sharding.to_host({'x': x, 'y': jnp.ones(3)})
  np.testing.assert_array_equal(out['x'], np.arange(64.0).reshape(8, 8))
  assert isinstance(out['y'], np.ndarray)


@pytest.mark.parametrize('batch,data,processes,accum,want', [
    (32, 8, 1, 1, 32), (32, 16, 1, 1, 32), (32, 64, 16, 1, 64), (8, 16, 1, 1, 16), (8, 32, 4, 1, 32),
    (512, 16, 4, 4, 512), (30, 8, 1, 1, 32), (16, 3, 1, 1, 18), (32, 16, 1, 4, 64), (6, 1, 4, 1, 8)])
def test_batches_pad_to_the_next_multiple_of_the_mesh(batch, data, processes, accum, want):
  assert batching.padded_size(batch, data, processes, accum) == want


def test_padding_rows_are_masked_and_contrastive_padding_is_refused():
  local = {'video': np.ones((3, 2)), 'label': np.array([4, 5, 6], np.int32), 'mask': np.ones(3, np.float32)}
  out = batching.pad(local, 5)
  np.testing.assert_array_equal(out['mask'], [1, 1, 1, 0, 0])
  np.testing.assert_array_equal(out['label'], [4, 5, 6, 0, 0])
  assert out['video'].shape == (5, 2) and out['label'].dtype == np.int32 and batching.pad(local, 3) is local
  c = base.get_config()
  c.batch_size, c.loss.name = 12, 'contrastive'
  with pytest.raises(ValueError, match='contrastive loss cannot be padded .*use a multiple of 8'):
    batching.train_size(c, _mesh(), 1)
  c.loss.name = 'classification'
  assert batching.train_size(c, _mesh(), 1) == 16 and batching.eval_size(c, _mesh(), 1) == 8
