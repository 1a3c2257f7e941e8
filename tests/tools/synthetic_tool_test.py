"""Tests for `python -m msta_jax.tools.synthetic`: descriptions file, the build summary, usage errors."""
from __future__ import annotations

import re

import pytest

from msta_jax.data import descriptions as D
from msta_jax.data import synthetic as S
from msta_jax.tools import synthetic as tool
from tests.data.synthetic_test import SMALL


def test_write_descriptions(tmp_path):
  path = str(tmp_path / 'synthetic.json')
  assert tool.main(['synthetic', '--write_descriptions', path]) == 0
  assert D.load(path) == S.descriptions()


def test_parse_sizes():
  with pytest.raises(ValueError, match='unknown size'):
    tool.parse_sizes('bogus=3')
  assert tool.parse_sizes('test_per_class=4,few_shot_shots=2/8') == {'test_per_class': 4,
                                                                     'few_shot_shots': (2, 8)}


def test_command_line(synthetic_small_build, capsys):
  data_dir, _ = synthetic_small_build
  sizes = ','.join(f'{k}={"/".join(map(str, v)) if isinstance(v, tuple) else v}'
                   for k, v in SMALL.items())
  assert tool.main(['synthetic', f'--data_dir={data_dir}', '--seed=0', f'--sizes={sizes}']) == 0
  out = capsys.readouterr().out
  assert re.search(r'b2n_novel_test\s+144 clips\s+48 classes \(novel\)', out), out


def test_usage_errors(capsys):
  assert tool.main(['synthetic']) == 2
  assert tool.main(['synthetic', '--data_dir=x', '--sizes=bogus=1']) == 2
  assert "unknown size 'bogus'" in capsys.readouterr().err
