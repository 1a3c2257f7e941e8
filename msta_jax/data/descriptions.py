"""Spatial and temporal class descriptions for the consistency loss (L_CC), and the checks they must pass.

MSTA pulls each trainable class embedding towards the mean frozen-text embedding of a few spatial and a
few temporal descriptions of that class. The package ships one JSON file per dataset, in
`assets/descriptions/<dataset>.json`:

    {"<class name as in the class list>": {"spatial": ["...", ...], "temporal": ["...", ...]}, ...}

    from msta_jax.data import descriptions
    descs = descriptions.load('hmdb51')                       # or a path to a file in the same format
    problems = descriptions.validate(descs, descriptions.load_class_names('hmdb51'),
                                     count_tokens=models.Tokenizer(32).count_tokens)

`validate` is what keeps the texts useful as targets:
- coverage: every class in the list has an entry, and no entry names a class outside it (a misspelt key
  would otherwise silently leave its class without targets);
- counts: at least `min_per_kind` texts of each kind;
- length: at most `context_length` tokens with SOT/EOT (ViCLIP: 32); a longer text is silently cut by the
  tokenizer, so its ending (often the last step of a temporal text) would never reach the encoder;
- duplicates: the same text (case, spaces and final punctuation ignored) twice anywhere;
- near-duplicates: two texts that say the same thing once the class name is taken out give two classes
  the same target (the template-with-the-name-swapped text the loss cannot learn from). Each text becomes
  its content words (`content_words`: lower case, crude stemming, minus stop words and minus the words
  of its own class name); two texts are near-duplicates when the Jaccard overlap of those sets, each word
  weighted by its IDF over the file's classes (`idf_weights`), is >= NEAR_DUPLICATE_THRESHOLD. Compared:
  every pair across classes, and texts of the same kind within a class (a class's spatial and temporal
  texts may share words: they describe one action).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from msta_jax import files
from msta_jax.data import classes

DATASETS = ('hmdb51', 'ucf101', 'ssv2', 'k400', 'k600')
KINDS = ('spatial', 'temporal')
ASSETS_DIR = os.path.join(os.path.dirname(__file__), 'assets')
DESCRIPTIONS_DIR = os.path.join(ASSETS_DIR, 'descriptions')

# Overlap (IDF-weighted Jaccard of content words, see `validate`) at or above which two texts are
# near-duplicates. Measured on the first hand-written drafts of the shipped texts (docs/descriptions.md):
# from 0.40 up, pairs were one sentence frame with a noun or a direction swapped ("A player dribbles ...,
# passes to a teammate, who ..." for basketball and field hockey at 0.42; the left/right SSv2 mirrors at
# 1.00); just below (0.35-0.39), pairs were different actions sharing a setting ("an athlete ... track
# runway" for javelin and triple jump). 0.40 flagged 97 pairs (SSv2 75, K600 20 including K400's 6,
# UCF101 2); rewriting one side of each by hand (94 texts, two rounds) cleared them, and the shipped
# files now peak just under 0.40.
NEAR_DUPLICATE_THRESHOLD = 0.4

Descriptions = dict[str, dict[str, list[str]]]

# Function words carry no content: two texts that share only these are not alike.
_STOP_WORDS = frozenset("""
a an the and or but nor so yet of to in on at by for with from into onto over under up down off out
as than then that this these those there here it its it's is are was were be been being am do does did
has have had having not no one two some any each every both all more most very just only also again
while when where which who whom whose what how why until after before once during through across
his her hers their theirs them they he she him we us our you your i me my mine itself themselves
can could will would may might should must shall about around along against between beside toward
towards like such other another own same too still even ever
""".split())
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
  """Crude suffix stripping, enough that 'pushes', 'pushed' and 'pushing' meet as 'push'."""
  for suffix in ('ing', 'ed', 'es', 's'):
    if word.endswith(suffix) and len(word) - len(suffix) >= 3:
      return word[: -len(suffix)]
  return word


def content_words(text: str, class_name: str = '') -> frozenset[str]:
  """Stemmed words of `text` minus stop words and minus the words of `class_name`.

  Dropping the class name is what catches a sentence reused with the name swapped: the two texts
  become the same set, although each would read as specific to its own class.
  """
  drop = {_stem(w) for w in _WORD.findall(class_name.lower())}
  words = (_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS)
  return frozenset(w for w in words if w not in drop and w not in _STOP_WORDS)


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
  """Jaccard index |a & b| / |a | b| of two content-word sets (0 when both are empty)."""
  union = len(a | b)
  return len(a & b) / union if union else 0.0


def normalize(text: str) -> str:
  """Text as compared for exact duplicates: lower case, single spaces, no final punctuation."""
  return ' '.join(text.lower().split()).rstrip('.!?;, ')


@dataclasses.dataclass(frozen=True)
class Problem:
  """One failed check. `kind` is 'spatial', 'temporal' or None for a problem with the whole entry."""
  class_name: str
  kind: str | None
  message: str

  def __str__(self) -> str:
    where = f'{self.class_name!r}' + (f' [{self.kind}]' if self.kind else '')
    return f'{where}: {self.message}'


# --------------------------------------------------------------------------------------------------
# Files.


def description_path(dataset: str) -> str:
  """Path of the shipped descriptions of `dataset`."""
  if dataset not in DATASETS:
    raise ValueError(f'unknown dataset {dataset!r}; known: {", ".join(DATASETS)}')
  return os.path.join(DESCRIPTIONS_DIR, f'{dataset}.json')


def _resolve(dataset_or_path: str, directory: str) -> str:
  if dataset_or_path in DATASETS:
    return os.path.join(directory, f'{dataset_or_path}.json')
  if os.path.exists(dataset_or_path):
    return dataset_or_path
  raise ValueError(f'{dataset_or_path!r} is neither a known dataset ({", ".join(DATASETS)}) '
                   'nor an existing file')


def load_class_names(dataset_or_path: str) -> list[str]:
  """Class names in index order, from the package's class list or a JSON list file."""
  return classes.names(dataset_or_path)


def load(dataset_or_path: str) -> Descriptions:
  """Descriptions of a shipped dataset (by name) or from a file in the same format.

  Raises ValueError naming the class when the structure is wrong (not a dict of {kind: [str]}), so a
  bad file fails here rather than as a KeyError deep inside training. Content checks are `validate`'s.
  """
  path = _resolve(dataset_or_path, DESCRIPTIONS_DIR)
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (ValueError, RecursionError) as e:  # Not JSON, not UTF-8, or nested beyond the parser.
    raise ValueError(f'{path}: not a readable descriptions JSON ({type(e).__name__}: {e})') from e
  if not isinstance(data, dict):
    raise ValueError(f'{path}: expected a JSON object keyed by class name, got {type(data).__name__}')
  for name, entry in data.items():
    if not isinstance(entry, dict):
      raise ValueError(f'{path}: entry {name!r} must be an object with "spatial" and "temporal" lists')
    for kind, texts in entry.items():
      if kind not in KINDS:
        raise ValueError(f'{path}: entry {name!r} has unknown kind {kind!r}; expected {KINDS}')
      if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f'{path}: {name!r} [{kind}] must be a list of strings')
  return data


def save(descs: Mapping[str, Mapping[str, Sequence[str]]], path: str,
         class_names: Sequence[str] | None = None) -> None:
  """Writes `descs` atomically (temp file + rename), in class-list order when `class_names` is given.

  Atomic so that a run killed mid-write (the generator saves after every class) never leaves a
  truncated file that the next run could not resume from.
  """
  listed = [c for c in class_names or () if c in descs]
  order = listed + [c for c in descs if c not in set(listed)]
  out = {c: {k: list(descs[c].get(k, [])) for k in KINDS} for c in order}
  files.write_json(path, out, indent=1, ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# Checks.


def idf_weights(class_sets: Sequence[frozenset[str]]) -> dict[str, float]:
  """Smoothed inverse document frequency of each word, one document per class: log((1+C)/(1+df)) + 1.

  Why weight at all: in SSv2 nearly every text says "a hand ... an object ... on a table", so plain
  overlap calls unrelated classes alike. Such words get weight ~1, a word of a single class 5.5 (SSv2)
  to 6.7 (K600).
  """
  df: dict[str, int] = {}
  for words in class_sets:
    for w in words:
      df[w] = df.get(w, 0) + 1
  n = len(class_sets)
  return {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}


def near_duplicate_pairs(sets: Sequence[frozenset[str]], threshold: float,
                         weights: Mapping[str, float] | None = None) -> list[tuple[int, int, float]]:
  """All pairs (i < j) whose weighted Jaccard overlap is >= threshold, via one matrix product.

  Overlap = sum of weights of shared words / sum of weights of all words of the pair (plain Jaccard
  when `weights` is None). A Python loop over K600's 2,400 texts is ~3M set operations (seconds); the
  product takes milliseconds.
  """
  vocab = sorted(set().union(*sets)) if sets else []
  index = {w: i for i, w in enumerate(vocab)}
  x = np.zeros((len(sets), max(len(vocab), 1)), np.float32)
  for i, s in enumerate(sets):
    x[i, [index[w] for w in s]] = 1.0
  w = np.ones(x.shape[1], np.float32)
  if weights is not None and vocab:
    w = np.array([weights.get(v, 1.0) for v in vocab], np.float32)
  inter = (x * w) @ x.T
  size = x @ w
  union = size[:, None] + size[None, :] - inter
  jac = inter / np.maximum(union, 1e-6)
  ii, jj = np.nonzero(np.triu(jac >= threshold - 1e-6, k=1))
  return [(int(i), int(j), float(jac[i, j])) for i, j in zip(ii, jj)]


def validate(descs: Mapping[str, Mapping[str, Sequence[str]]], class_names: Sequence[str], *,
             context_length: int = 32, min_per_kind: int = 2,
             near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD,
             count_tokens: Callable[[list[str]], list[int]]) -> list[Problem]:
  """Every problem with `descs` against the class list; an empty list means the file is usable.

  Args:
    descs: {class: {kind: [text, ...]}} as returned by `load`.
    class_names: the dataset's classes; each needs an entry, and entries outside it are reported.
    context_length: the text encoder's context, SOT and EOT included (ViCLIP 32, CLIP 77).
    min_per_kind: fewest texts of each kind per class (MSTA's best N is 2).
    near_duplicate_threshold: content-word overlap at which two texts count as near-duplicates.
    count_tokens: batch token counter of the text encoder, SOT and EOT included (the models floor's
      `Tokenizer(context_length).count_tokens`; passed in, since data/ knows nothing of models).
  Returns:
    Problems grouped by check, each in class-list order; a near-duplicate pair is reported once, on
    its later text (the message names the other).
  """
  problems: list[Problem] = []
  known = set(class_names)
  for name in class_names:
    if name not in descs:
      problems.append(Problem(name, None, 'missing: the class has no descriptions'))
  for name in descs:
    if name not in known:
      problems.append(Problem(name, None, 'not in the class list (misspelt or from another dataset?)'))

  # Flatten in class-list order; entries outside the list are still checked for content.
  order = [c for c in class_names if c in descs] + [c for c in descs if c not in known]
  items: list[tuple[str, str, int, str]] = []  # (class, kind, index, text)
  for name in order:
    entry = descs[name]
    for kind in entry:
      if kind not in KINDS:
        problems.append(Problem(name, kind, f'unknown kind; expected one of {KINDS}'))
    for kind in KINDS:
      texts = list(entry.get(kind, []))
      if len(texts) < min_per_kind:
        problems.append(Problem(name, kind, f'{len(texts)} texts, need at least {min_per_kind}'))
      for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
          problems.append(Problem(name, kind, f'text #{i} is empty or not a string: {text!r}'))
        else:
          items.append((name, kind, i, text))

  for (name, kind, i, text), n in zip(items, count_tokens([t for *_, t in items])):
    if n > context_length:
      problems.append(Problem(name, kind, f'text #{i} has {n} tokens > {context_length} and would be '
                              f'truncated: "{text}"'))

  seen: dict[str, tuple[str, str, int]] = {}
  for name, kind, i, text in items:
    first = seen.setdefault(normalize(text), (name, kind, i))
    if first != (name, kind, i):
      problems.append(Problem(name, kind, f'text #{i} duplicates {first[0]!r} [{first[1]}] #{first[2]}: '
                              f'"{text}"'))

  sets = [content_words(text, name) for name, _, _, text in items]
  per_class: dict[str, frozenset[str]] = {}
  for (name, *_), words in zip(items, sets):
    per_class[name] = per_class.get(name, frozenset()) | words
  weights = idf_weights(list(per_class.values()))
  for a, b, score in near_duplicate_pairs(sets, near_duplicate_threshold, weights):
    (na, ka, ia, ta), (nb, kb, ib, tb) = items[a], items[b]
    if na == nb and ka != kb:
      continue  # A class's spatial and temporal texts describe the same action: sharing words is fine.
    if normalize(ta) == normalize(tb):
      continue  # Already reported as an exact duplicate.
    where = 'same class' if na == nb else f'{na!r}'
    problems.append(Problem(nb, kb, f'text #{ib} near-duplicates {where} [{ka}] #{ia} '
                            f'(overlap {score:.2f} >= {near_duplicate_threshold}): "{tb}" ~ "{ta}"'))
  return problems
