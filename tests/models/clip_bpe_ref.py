"""OpenAI CLIP's tokenizer in plain Python (clip/simple_tokenizer.py's steps): the tokenizer tests' reference.

Independent of transformers and of the `tokenizers` library our tokenizer runs on. transformers' slow
CLIPTokenizer played this part until 5.x, which has none. Steps: ftfy.fix_text, HTML unescaped twice,
whitespace collapsed, lower case; CLIP's regex splits words; each word's UTF-8 bytes become printable
characters; then the lowest-ranked adjacent pair is merged, everywhere in the word, until none is ranked.
"""
import html
import json
import math

import ftfy
import regex

from msta_jax.tools.derive_vocab import bytes_to_unicode

_WORDS = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                       regex.IGNORECASE)


class SimpleTokenizer:
  """BPE ids without SOT/EOT, from the HF-layout files (vocab.json, merges.txt) we ship."""

  def __init__(self, vocab_json: str, merges_txt: str):
    with open(vocab_json, encoding='utf-8') as f:
      self.vocab = json.load(f)
    with open(merges_txt, encoding='utf-8') as f:
      pairs = [tuple(line.split()) for line in f if line.strip() and not line.startswith('#version')]
    self.ranks = {pair: rank for rank, pair in enumerate(pairs)}
    self.byte_chars = bytes_to_unicode()

  def _merge(self, word: str) -> list[str]:
    parts = [*word[:-1], word[-1] + '</w>']
    while len(parts) > 1:
      best = min(zip(parts, parts[1:]), key=lambda pair: self.ranks.get(pair, math.inf))
      if best not in self.ranks:
        break
      merged, i = [], 0
      while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
          merged.append(parts[i] + parts[i + 1])
          i += 2
        else:
          merged.append(parts[i])
          i += 1
      parts = merged
    return parts

  def encode(self, text: str) -> list[int]:
    text = ' '.join(html.unescape(html.unescape(ftfy.fix_text(text))).split()).lower()
    ids = []
    for word in _WORDS.findall(text):
      chars = ''.join(self.byte_chars[b] for b in word.encode('utf-8'))
      ids.extend(self.vocab[part] for part in self._merge(chars))
    return ids
