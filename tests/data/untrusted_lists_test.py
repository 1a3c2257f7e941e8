"""Broken class lists, split manifests and description files: the project's error naming the file,
never a raw JSONDecodeError, UnicodeDecodeError or RecursionError."""
import pytest

from msta_jax.data import classes, descriptions, splits


@pytest.mark.parametrize('data,message', [
    (b'["a", ', 'not a readable .*JSON'),
    (b'\xff\xfe["a"]', 'not a readable .*JSON'),
    (b'[' * 100_000 + b']' * 100_000, r'RecursionError'),
])
def test_class_and_description_files(tmp_path, data, message):
  path = tmp_path / 'x.json'
  path.write_bytes(data)
  with pytest.raises(ValueError, match=message) as e:
    classes.names(str(path))
  assert str(path) in str(e.value)
  with pytest.raises(ValueError, match=message) as e:
    descriptions.load(str(path))
  assert str(path) in str(e.value)


@pytest.mark.parametrize('data,message', [
    (b'\xff"a"', 'not UTF-8'),
    (b'{"0": "a", "b": "c"}', r'keys must be "0".."1"'),  # was a raw ValueError from int('b')
    (b'{"0": ', 'not JSON'),
])
def test_split_class_lists(data, message):
  with pytest.raises(splits.SplitFileError, match=message) as e:
    splits.parse_class_list(data, '/lists/classes.json')
  assert '/lists/classes.json' in str(e.value)
