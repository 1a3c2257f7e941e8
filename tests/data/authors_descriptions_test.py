"""The authors' index-keyed description files (written here in their format; never shipped)."""
import json

import ml_collections
import pytest

from msta_jax.data import authors_descriptions
from msta_jax.data import classes
from msta_jax.train import tasks


def _write(path, n_classes, n, word):
  path.write_text(json.dumps({str(i): [f'{word} {i} number {j}.' for j in range(n)] for i in range(n_classes)}))
  return str(path)


@pytest.mark.parametrize('n', [2, 4, 8])
def test_indices_map_to_our_class_list(tmp_path, n):
  names = classes.names('hmdb51')
  s, t = _write(tmp_path / 's.json', 51, n, 'looks'), _write(tmp_path / 't.json', 51, n, 'moves')
  config = ml_collections.ConfigDict({'data': {'descriptions': f'authors:{s},{t}', 'dataset': 'hmdb51'}})
  descs = tasks.descriptions(config, src=None)
  assert list(descs) == names
  assert descs[names[7]] == {'spatial': [f'looks 7 number {j}.' for j in range(n)],
                             'temporal': [f'moves 7 number {j}.' for j in range(n)]}


def test_counts_and_format_are_checked(tmp_path):
  names = classes.names('hmdb51')
  good = _write(tmp_path / 'good.json', 51, 2, 'x')
  with pytest.raises(ValueError, match='101 classes, but the class list has 51'):
    authors_descriptions.load(f'authors:{_write(tmp_path / "ucf.json", 101, 2, "x")},{good}', names)
  with pytest.raises(ValueError, match=r'same number N of sentences, N in \(2, 4, 8\) \(found \[3\]\)'):
    authors_descriptions.load(f'authors:{good},{_write(tmp_path / "n3.json", 51, 3, "x")}', names)
  with pytest.raises(ValueError, match='2 spatial but 4 temporal'):
    authors_descriptions.load(f'authors:{good},{_write(tmp_path / "n4.json", 51, 4, "x")}', names)
  (tmp_path / 'named.json').write_text(json.dumps({n: ['a', 'b'] for n in names}))
  with pytest.raises(ValueError, match='keyed by class index'):
    authors_descriptions.load(f'authors:{tmp_path / "named.json"},{good}', names)
  with pytest.raises(ValueError, match='expected authors:SPATIAL.json,TEMPORAL.json'):
    authors_descriptions.load(f'authors:{good}', names)
  with pytest.raises(FileNotFoundError, match="temporal file '/nonexistent.json' does not exist"):
    authors_descriptions.load(f'authors:{good},/nonexistent.json', names)
