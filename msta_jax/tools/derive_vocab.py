"""Derives the HF-layout CLIP vocabulary (vocab.json, merges.txt) from OpenAI's BPE file.

The package ships the derived files (msta_jax/models/assets/clip_bpe/); this tool documents and repeats
how they were made, so anyone can check them against the original:

  python -m msta_jax.tools.derive_vocab --bpe=bpe_simple_vocab_16e6.txt.gz --out=DIR

The source file is OpenAI's `bpe_simple_vocab_16e6.txt.gz` (MIT licence), sha256 below; it ships, for
example, inside the clip-anytorch and open_clip_torch wheels.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os

from absl import app, flags

SOURCE_SHA256 = '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a'
# OpenAI's tokenizer keeps the first 49152 - 256 - 2 merge lines (after a version header).
NUM_MERGES = 49152 - 256 - 2


def bytes_to_unicode() -> dict[int, str]:
  """Byte -> printable character, in the order the vocabulary lists them (OpenAI's and GPT-2's map).

  Printable Latin-1 bytes stand for themselves; the other 68 (control characters, space, ...) map to
  U+0100 onwards, in byte order. Ours, since transformers 5 dropped it from its CLIP tokenizer module.
  """
  printable = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
  others = [b for b in range(256) if b not in printable]
  return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(others)}}


def derive(bpe_gz: str) -> tuple[dict[str, int], list[str]]:
  """Returns (vocab token -> id, merge lines) exactly as OpenAI's SimpleTokenizer builds them."""
  raw = open(bpe_gz, 'rb').read()
  digest = hashlib.sha256(raw).hexdigest()
  if digest != SOURCE_SHA256:
    raise ValueError(f'{bpe_gz}: sha256 {digest} is not the CLIP BPE file ({SOURCE_SHA256}).')
  merges = gzip.decompress(raw).decode('utf-8').split('\n')[1:NUM_MERGES + 1]
  byte_chars = list(bytes_to_unicode().values())
  tokens = byte_chars + [c + '</w>' for c in byte_chars]
  tokens += [''.join(m.split()) for m in merges]
  tokens += ['<|startoftext|>', '<|endoftext|>']
  vocab = {t: i for i, t in enumerate(tokens)}
  if len(vocab) != 49408:
    raise ValueError(f'derived {len(vocab)} distinct tokens, expected 49408')
  return vocab, merges


def write(vocab: dict[str, int], merges: list[str], out_dir: str) -> None:
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'vocab.json'), 'w', encoding='utf-8') as f:
    json.dump(vocab, f, ensure_ascii=False, separators=(',', ':'))
  with open(os.path.join(out_dir, 'merges.txt'), 'w', encoding='utf-8') as f:
    f.write('#version: 0.2\n' + '\n'.join(merges) + '\n')




def _define_flags() -> None:
  """CLI flags, defined only when run as a program (required flags would otherwise bind every
  other tool's flag parsing in the same process)."""
  global _BPE, _OUT
  _BPE = flags.DEFINE_string('bpe', None, 'Path to bpe_simple_vocab_16e6.txt.gz.', required=True)
  _OUT = flags.DEFINE_string('out', None, 'Output directory.', required=True)


def main(argv: list[str]) -> None:
  del argv
  vocab, merges = derive(_BPE.value)
  write(vocab, merges, _OUT.value)
  print(f'wrote {len(vocab)} tokens and {len(merges)} merges to {_OUT.value}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
