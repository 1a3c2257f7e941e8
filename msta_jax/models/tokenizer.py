"""CLIP tokenizer, offline: transformers' CLIPTokenizerFast on the vocabulary shipped in the package.

    from msta_jax.models import tokenizer
    tok = tokenizer.Tokenizer(context_length=32)      # ViCLIP; 77 for OpenAI CLIP
    ids, mask = tok(['a video of archery.'])           # int32 [B, 32], bool [B, 32]

Layout follows OpenAI's `clip.tokenize(..., truncate=True)` (also ViCLIP's): `[SOT] + bpe + [EOT]`,
padded with 0 (not the HF pad id); a text longer than the context is cut and its last token forced to
EOT, so pooling at the first EOT always finds one. Text is cleaned as OpenAI does (ftfy.fix_text, HTML
unescaping twice, whitespace collapsed, lower case) before the fast tokenizer sees it: the fast
tokenizer alone skips ftfy and HTML unescaping (see tests/models/tokenizer_test.py for the classes of
input where that matters).

ftfy is optional (the GPU benchmark image has none): without it `clean` skips `ftfy.fix_text` only.
Plain ASCII text gets the same ids either way (ftfy leaves ASCII alone; tested). What changes without
ftfy is text that ftfy repairs: mojibake ('schÃ¶n'), ligatures ('ﬁ'), curly quotes, full-width
letters; such text tokenizes as written. Install ftfy (a declared dependency) wherever prompts or
descriptions may hold such text; `FTFY` says whether it is in use.
"""
from __future__ import annotations

import functools
import html
import os
import threading

os.environ.setdefault('USE_TF', '0')  # transformers must not import TensorFlow for a tokenizer.

import numpy as np  # noqa: E402

try:  # Optional: absent on the GPU benchmark image (see the module docstring).
  import ftfy  # noqa: E402
except ImportError:
  ftfy = None

FTFY = ftfy is not None

VOCAB_DIR = os.path.join(os.path.dirname(__file__), 'assets', 'clip_bpe')
SOT_ID = 49406
EOT_ID = 49407
VOCAB_SIZE = 49408


def clean(text: str) -> str:
  """OpenAI CLIP's `basic_clean` + `whitespace_clean` (lower-casing is the tokenizer's); without ftfy,
  everything but `ftfy.fix_text`."""
  if ftfy is not None:
    text = ftfy.fix_text(text)
  text = html.unescape(html.unescape(text))
  return ' '.join(text.split())


@functools.lru_cache(maxsize=None)
def _fast_tokenizer():
  import transformers
  # from_pretrained on the folder reads vocab.json + merges.txt in transformers 4.x and 5.x alike (5.x
  # ignores the vocab_file= / merges_file= arguments and silently builds an empty vocabulary).
  # CLIPTokenizerFast is CLIPTokenizer in 5.x, where every tokenizer is the fast one.
  tok = transformers.CLIPTokenizerFast.from_pretrained(VOCAB_DIR)
  special = tok.convert_tokens_to_ids(['<|startoftext|>', '<|endoftext|>'])
  if len(tok) != VOCAB_SIZE or special != [SOT_ID, EOT_ID]:
    raise RuntimeError(f'transformers {transformers.__version__} read {VOCAB_DIR} as a CLIP tokenizer with '
                       f'{len(tok)} tokens and SOT/EOT ids {special}, not {VOCAB_SIZE} and {[SOT_ID, EOT_ID]}: '
                       'check that vocab.json and merges.txt are there and that this transformers reads them.')
  return tok


class Tokenizer:
  """Turns strings into CLIP token ids for a text encoder with `context_length` positions."""

  def __init__(self, context_length: int):
    if context_length < 2:
      raise ValueError(f'context_length must hold SOT and EOT, got {context_length}')
    self.context_length = context_length
    self.sot_id, self.eot_id, self.vocab_size = SOT_ID, EOT_ID, VOCAB_SIZE
    self._fast = _fast_tokenizer()  # Built here, in the caller's thread: transformers' lazy imports race.
    self._lock = threading.Lock()   # HF fast tokenizers must not be called from two threads at once.

  def bpe_ids(self, texts: list[str]) -> list[list[int]]:
    """BPE ids without special tokens, after OpenAI's cleaning."""
    cleaned = [clean(t) for t in texts]
    with self._lock:
      return self._fast(cleaned, add_special_tokens=False)['input_ids']

  def count_tokens(self, texts: list[str]) -> list[int]:
    """Lengths with SOT and EOT, before truncation: > context_length means the text gets cut."""
    return [len(ids) + 2 for ids in self.bpe_ids(texts)] if texts else []

  def num_tokens(self, text: str) -> int:
    return self.count_tokens([text])[0]

  def __call__(self, texts: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Returns (ids int32 [B, L], mask bool [B, L]) with L = context_length."""
    if isinstance(texts, str):
      texts = [texts]
    ids = np.zeros((len(texts), self.context_length), np.int32)
    for i, bpe in enumerate(self.bpe_ids(list(texts))):
      row = [self.sot_id] + bpe[: self.context_length - 2] + [self.eot_id]
      ids[i, : len(row)] = row
    return ids, ids != 0
