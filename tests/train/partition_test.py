"""Freezing rules: first full match wins, uncovered parameters fail, optimizer state only where trained."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from msta_jax.train import partition

PARAMS = {'msta': {'video_7': {'down': {'kernel': jnp.ones((4, 2))}}},
          'visual': {'ln_post': {'scale': jnp.ones(4)}, 'proj': jnp.ones((4, 3))},
          'logit_scale': jnp.zeros(())}


def test_first_full_match_wins():
  labels = partition.param_labels(PARAMS, [('visual/proj', 'trainable'), ('msta/.*', 'trainable'),
                                           ('visual/.*', 'frozen'), ('.*', 'frozen')])
  assert labels['visual']['proj'] == 'trainable' and labels['visual']['ln_post']['scale'] == 'frozen'
  assert labels['msta']['video_7']['down']['kernel'] == 'trainable' and labels['logit_scale'] == 'frozen'
  # fullmatch: 'visual' alone does not match 'visual/proj'.
  labels = partition.param_labels(PARAMS, [('visual', 'trainable'), ('.*', 'frozen')])
  assert labels['visual']['proj'] == 'frozen'


def test_uncovered_parameters_are_an_error():
  with pytest.raises(ValueError, match=r"3 parameters match no rule.*visual/ln_post/scale"):
    partition.param_labels(PARAMS, [('msta/.*', 'trainable')])
  with pytest.raises(ValueError, match="expected \\(regex, 'trainable' \\| 'frozen'\\)"):
    partition.param_labels(PARAMS, [('.*', 'train')])


def test_split_merge_and_optimizer_state():
  labels = partition.param_labels(PARAMS, [('msta/.*', 'trainable'), ('.*', 'frozen')])
  tr, fr = partition.split(PARAMS, labels)
  assert set(tr) == {'msta'} and set(fr) == {'visual', 'logit_scale'}
  merged = partition.merge(tr, fr)
  jax.tree.map(np.testing.assert_array_equal, merged, PARAMS)
  with pytest.raises(ValueError, match='overlap'):
    partition.merge(tr, tr)
  tx = partition.make_optimizer(labels, optax.adamw(1e-3))
  state = tx.init(PARAMS)
  floats = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
  assert sum(x.size for x in floats) == 2 * 8  # mu and nu for the 8 trainable numbers only.
  assert partition.count(tr) == 8 and partition.count(fr) == 4 + 12 + 1


def test_table_totals():
  labels = partition.param_labels(PARAMS, [('msta/.*', 'trainable'), ('.*', 'frozen')])
  text = partition.table(PARAMS, labels)
  assert text.splitlines()[-1].split() == ['total', '8', '17']
