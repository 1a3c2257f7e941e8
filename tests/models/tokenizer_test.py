"""The offline tokenizer against OpenAI's tokenizer steps in plain Python (tests/models/clip_bpe_ref.py),
and that reference against transformers' slow CLIPTokenizer where transformers still has one (4.x)."""
import os

import numpy as np
import pytest
import transformers

from msta_jax.models import tokenizer as T
from tests.models import clip_bpe_ref

# Punctuation, case, whitespace, unicode, numbers, contractions, HTML entities, CJK, length.
AGREE = ['Hello, World!', 'a   b\t\nc', 'Ünïcödé ÇAFÉ', "don't can't I'm", '$12.50 + 3%', '日本語のテキスト',
         'A-B_C/D\\E', '  leading and trailing  ', 'fish &amp; chips', '&lt;b&gt;', 'x' * 100,
         'Pushing something from left to right', 'emoji 🎉🎉 ok']
# Inputs that ftfy repairs: a fast tokenizer without OpenAI's cleaning tokenizes them differently.
FTFY_FIXES = ['schÃ¶n mojibake', 'ﬁnancial ligature', '“smart quotes”', 'ＦＵＬＬＷＩＤＴＨ']


VOCAB, MERGES = os.path.join(T.VOCAB_DIR, 'vocab.json'), os.path.join(T.VOCAB_DIR, 'merges.txt')


@pytest.fixture(scope='module')
def ref():
  return clip_bpe_ref.SimpleTokenizer(VOCAB, MERGES)


def test_vocab_is_clip(ref):
  assert len(ref.vocab) == T.VOCAB_SIZE == 49408
  assert [ref.vocab['<|startoftext|>'], ref.vocab['<|endoftext|>']] == [T.SOT_ID, T.EOT_ID]
  byte_chars = list(clip_bpe_ref.bytes_to_unicode().values())  # derive_vocab's layout: bytes, bytes</w>, merges.
  assert list(ref.vocab)[:512] == byte_chars + [c + '</w>' for c in byte_chars]
  ids, mask = T.Tokenizer(8)(['a diagram'])  # The ids OpenAI's README shows for this text.
  assert ids.tolist() == [[49406, 320, 22697, 49407, 0, 0, 0, 0]]
  assert mask.tolist() == [[True] * 4 + [False] * 4]
  assert ids.dtype == np.int32


@pytest.mark.parametrize('text', AGREE + FTFY_FIXES)
def test_fast_with_cleaning_matches_reference(ref, text):
  assert T.Tokenizer(77).bpe_ids([text])[0] == ref.encode(text)


@pytest.mark.parametrize('text', FTFY_FIXES)
def test_raw_fast_tokenizer_differs_where_ftfy_repairs(ref, text):
  raw = T._fast_tokenizer()(text, add_special_tokens=False)['input_ids']
  assert raw != ref.encode(text)


@pytest.mark.skipif(not hasattr(transformers.CLIPTokenizer, 'bpe'),
                    reason=f'transformers {transformers.__version__} has no slow (Python) CLIPTokenizer')
def test_reference_matches_transformers_slow_tokenizer(ref):
  slow = transformers.CLIPTokenizer(VOCAB, MERGES)
  for text in AGREE + FTFY_FIXES:
    assert ref.encode(text) == slow(text, add_special_tokens=False)['input_ids'], text


def test_truncation_keeps_eot_last_and_pads_with_zero():
  tok = T.Tokenizer(32)
  ids, mask = tok(['word ' * 50, 'short', ''])
  assert ids.shape == (3, 32)
  assert ids[0, 0] == T.SOT_ID and ids[0, -1] == T.EOT_ID and mask[0].all()
  assert (ids[0, 1:-1] == tok.bpe_ids(['word ' * 50])[0][:30]).all()
  assert ids[1, :3].tolist() == [T.SOT_ID, tok.bpe_ids(['short'])[0][0], T.EOT_ID]
  assert (ids[1, 3:] == 0).all() and mask[1].sum() == 3
  assert ids[2, :2].tolist() == [T.SOT_ID, T.EOT_ID] and mask[2].sum() == 2
  assert tok.num_tokens('word ' * 50) == 52


def test_context_too_small_is_an_error():
  with pytest.raises(ValueError, match='context_length'):
    T.Tokenizer(1)


def _prompts() -> list[str]:
  """Every shipped class name in the prompt template, plus the plain ASCII inputs above."""
  from msta_jax.data import classes
  names = [c for d in classes.DATASETS for c in classes.names(d)]
  return [f'a video of {c}.' for c in names] + [t for t in AGREE if t.isascii()]


def test_ascii_prompts_get_the_same_ids_without_ftfy(monkeypatch):
  """The GPU image has no ftfy: plain ASCII text tokenizes the same; text that ftfy repairs does not."""
  prompts = _prompts()
  assert len(prompts) > 1000 and all(p.isascii() for p in prompts)
  tok = T.Tokenizer(77)
  with_ftfy = tok(prompts)[0]
  monkeypatch.setattr(T, 'ftfy', None)
  np.testing.assert_array_equal(tok(prompts)[0], with_ftfy)
  assert tok.bpe_ids(['schÃ¶n mojibake']) != [clip_bpe_ref.SimpleTokenizer(VOCAB, MERGES).encode('schÃ¶n mojibake')]
