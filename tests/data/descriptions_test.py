"""Tests for msta_jax.data.descriptions: the shipped texts pass every check, and each check fires."""
from __future__ import annotations

import json

import pytest

from msta_jax.data import descriptions as D
from msta_jax.models.tokenizer import Tokenizer


@pytest.fixture(scope='module')
def count_tokens():
  return Tokenizer(32).count_tokens


def good() -> dict[str, dict[str, list[str]]]:
  """Three classes whose texts share nothing but stop words: a valid starting point to break."""
  return {
      'archery': {'spatial': ['A bow drawn back beside a target stand on grass.',
                              'Quivers of feathered arrows hang at an outdoor range.'],
                  'temporal': ['The string is pulled to the cheek, held, then released.',
                               'An arrow flies off and thuds into the straw boss.']},
      'juggling': {'spatial': ['Three colored balls hover above open palms in a park.',
                               'A performer in a street costume faces a small crowd.'],
                   'temporal': ['Each hand tosses upward as the other catches, in a loop.',
                                'Clubs spin overhead faster and faster until one drops.']},
      'rowing': {'spatial': ['A narrow shell with eight seats glides across a calm lake.',
                             'Oars rest in riggers while a coxswain holds a megaphone.'],
                 'temporal': ['Blades catch the water, legs drive, and the oars sweep back.',
                              'Strokes quicken near the finish buoys, then the crew slumps.']},
  }


NAMES = ['archery', 'juggling', 'rowing']


def messages(problems: list[D.Problem]) -> list[str]:
  return [str(p) for p in problems]


@pytest.mark.parametrize('dataset', D.DATASETS)
def test_shipped_descriptions_pass_validate(dataset, count_tokens):
  descs, names = D.load(dataset), D.load_class_names(dataset)
  problems = D.validate(descs, names, count_tokens=count_tokens)
  assert not problems, '\n'.join(messages(problems))
  assert list(descs) == names  # Written in class-list order, so diffs stay readable.
  for entry in descs.values():
    assert [len(entry[k]) for k in D.KINDS] == [2, 2]
    for text in entry['spatial'] + entry['temporal']:
      assert text.isascii() and len(text.split()) <= 20, text


def test_k600_reuses_k400_texts_for_shared_classes():
  k400, k600 = D.load('k400'), D.load('k600')
  shared = [c for c in k600 if c in k400]
  assert len(shared) == 368 and len(k600) - len(shared) == 232
  assert all(k600[c] == k400[c] for c in shared)


def test_good_input_has_no_problems(count_tokens):
  assert D.validate(good(), NAMES, count_tokens=count_tokens) == []


def test_missing_and_unknown_classes(count_tokens):
  descs = good()
  descs['rowng'] = descs.pop('rowing')
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert [(p.class_name, p.kind) for p in problems] == [('rowing', None), ('rowng', None)]
  assert 'missing' in problems[0].message and 'not in the class list' in problems[1].message


def test_too_few_texts(count_tokens):
  descs = good()
  descs['juggling']['temporal'] = descs['juggling']['temporal'][:1]
  del descs['archery']['spatial']
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert [(p.class_name, p.kind) for p in problems] == [('archery', 'spatial'), ('juggling', 'temporal')]
  assert messages(problems)[1] == "'juggling' [temporal]: 1 texts, need at least 2"
  assert D.validate(descs, NAMES, min_per_kind=1, count_tokens=count_tokens)[0].kind == 'spatial'


def test_too_long_for_the_context(count_tokens):
  descs = good()
  long = ('Under floodlights the archer in a green vest and arm guard stands sideways at the shooting line, '
          'sight pin aligned, release aid clipped to the string loop.')
  descs['archery']['spatial'].append(long)
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert len(problems) == 1 and problems[0].class_name == 'archery' and problems[0].kind == 'spatial'
  assert 'tokens > 32 and would be truncated' in problems[0].message
  assert D.validate(descs, NAMES, context_length=77, count_tokens=Tokenizer(77).count_tokens) == []


def test_exact_duplicates_within_and_across_classes(count_tokens):
  descs = good()
  descs['archery']['temporal'].append('an arrow flies off and thuds into the straw boss')  # Case, no period.
  descs['rowing']['spatial'].append(descs['juggling']['spatial'][0])
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert [(p.class_name, p.kind) for p in problems] == [('archery', 'temporal'), ('rowing', 'spatial')]
  assert "duplicates 'archery' [temporal] #1" in problems[0].message
  assert "duplicates 'juggling' [spatial] #0" in problems[1].message


def test_near_duplicate_across_classes_with_the_name_swapped(count_tokens):
  descs = good()
  descs['juggling']['spatial'][1] = 'A performer does juggling on a street corner before a small crowd.'
  descs['rowing']['spatial'][1] = 'A performer does rowing on a street corner before a small crowd.'
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert len(problems) == 1
  assert (problems[0].class_name, problems[0].kind) == ('rowing', 'spatial')
  assert "near-duplicates 'juggling' [spatial] #1 (overlap 1.00" in problems[0].message


def test_near_duplicate_within_a_kind_but_not_across_kinds(count_tokens):
  descs = good()
  descs['rowing']['temporal'][1] = 'Blades catch the water, legs drive, and the oars sweep back fast.'
  problems = D.validate(descs, NAMES, count_tokens=count_tokens)
  assert len(problems) == 1 and 'near-duplicates same class [temporal] #0' in problems[0].message
  # A spatial text may share the words of its own class's temporal one: both describe the same action.
  descs = good()
  descs['rowing']['spatial'][1] = 'Blades catch the water, legs drive, oars mid-sweep.'
  assert D.validate(descs, NAMES, count_tokens=count_tokens) == []


def test_content_words_drop_class_name_stop_words_and_suffixes():
  words = D.content_words('The man is pushing two boxes and pushes a cart, then he rows away.', 'rowing')
  assert words == {'man', 'push', 'box', 'cart', 'away'}
  assert D.overlap(frozenset({'a', 'b'}), frozenset({'b', 'c'})) == pytest.approx(1 / 3)
  assert D.overlap(frozenset(), frozenset()) == 0.0


def test_near_duplicate_pairs_weights_down_common_words():
  sets = [frozenset({'hand', 'table', 'cup'}), frozenset({'hand', 'table', 'pen'})]
  assert D.near_duplicate_pairs(sets, 0.5) == [(0, 1, pytest.approx(0.5))]
  assert D.near_duplicate_pairs(sets, 0.4, {'hand': 1.0, 'table': 1.0, 'cup': 6.0, 'pen': 6.0}) == []


def test_load_and_save_round_trip_in_class_order(tmp_path):
  path = tmp_path / 'out' / 'd.json'
  descs = good()
  D.save({c: descs[c] for c in reversed(NAMES)}, str(path), NAMES)
  assert list(json.loads(path.read_text())) == NAMES
  assert D.load(str(path)) == descs
  assert not list(path.parent.glob('*.tmp.*'))


@pytest.mark.parametrize('content, match', [
    ('[1, 2]', 'expected a JSON object'),
    ('{"a": ["x"]}', 'entry \'a\' must be an object'),
    ('{"a": {"visual": ["x"]}}', 'unknown kind \'visual\''),
    ('{"a": {"spatial": "x"}}', 'must be a list of strings'),
])
def test_load_rejects_bad_structure(tmp_path, content, match):
  path = tmp_path / 'bad.json'
  path.write_text(content)
  with pytest.raises(ValueError, match=match):
    D.load(str(path))


def test_unknown_dataset_names_the_known_ones():
  with pytest.raises(ValueError, match='neither a known dataset'):
    D.load('kinetics')
  with pytest.raises(ValueError, match='hmdb51, ucf101, ssv2, k400, k600'):
    D.description_path('kinetics')
