"""Validates the class descriptions of the consistency loss, and fills or extends them through an LLM.

  python -m msta_jax.tools.descriptions validate                      # all shipped datasets
  python -m msta_jax.tools.descriptions validate --dataset=ssv2
  python -m msta_jax.tools.descriptions validate --file=my.json --classes=classes.json
  python -m msta_jax.tools.descriptions generate --dataset=hmdb51 \
      --endpoint=http://127.0.0.1:8000/v1 --model=MODEL --n=8 --output=hmdb51_n8.json

`validate` prints every problem (see msta_jax/data/descriptions.py for the checks) and exits 1 naming the
offending classes. `generate` asks any OpenAI-compatible chat endpoint (`POST {endpoint}/chat/completions`,
e.g. a local vLLM or llama.cpp server) for the texts each class lacks, until every class has `--n` of
each kind. It starts from `--output` if that file exists (so a killed run resumes where it stopped),
otherwise from `--base` (default: the shipped file), and writes `--output` after every class. Answers
are cached on disk under sha256(model, prompt), so a rerun repeats no request; failed requests and
unusable answers are retried with exponential backoff, a bounded number of times. The shipped assets are
only overwritten with `--in_place`. Run `validate` on the result: `generate` checks each answer on its
own (count, length, duplicates within the class), `validate` also compares across classes.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.client
import json
import os
import string
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from absl import app, flags, logging

from msta_jax import files
from msta_jax import models
from msta_jax.data import descriptions

DISPLAY_NAMES = {'hmdb51': 'HMDB51', 'ucf101': 'UCF101', 'ssv2': 'Something-Something v2',
                 'k400': 'Kinetics-400', 'k600': 'Kinetics-600'}
PROMPT_PATH = os.path.join(descriptions.DESCRIPTIONS_DIR, 'prompt.txt')
MAX_WORDS = 20  # Asked of the model: 20 words stay well inside ViCLIP's 32 tokens (ours peak at 28).
# Status codes worth another try: the server is busy or briefly down. Others (400 bad model name, 401
# missing key) would fail the same way every time.
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

FLAGS = flags.FLAGS
# allow_override: tests import several tools into one absl flag registry, and a flag of the same name in
# another tool (--dataset in tools/splits.py) must not make either import fail. Run as a program, only
# this module's flags exist.
_SHARED = dict(allow_override=True)
flags.DEFINE_string('dataset', None, f'One of {", ".join(descriptions.DATASETS)}; validate: default all.',
                    **_SHARED)
flags.DEFINE_string('file', None, 'validate: descriptions file to check, not the shipped one.', **_SHARED)
flags.DEFINE_string('classes', None, 'Class-list JSON to use instead of the list of --dataset.', **_SHARED)
flags.DEFINE_integer('context_length', 32, 'Text context with SOT/EOT (ViCLIP 32, CLIP 77).', **_SHARED)
flags.DEFINE_integer('min_per_kind', 2, 'validate: fewest texts of each kind per class.', **_SHARED)
flags.DEFINE_float('near_duplicate_threshold', descriptions.NEAR_DUPLICATE_THRESHOLD,
                   'validate: content-word overlap at which two texts are near-duplicates.', **_SHARED)
flags.DEFINE_string('endpoint', None, 'generate: OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.',
                    **_SHARED)
flags.DEFINE_string('model', None, 'generate: model name sent to the endpoint.', **_SHARED)
flags.DEFINE_integer('n', 2, 'generate: texts wanted per kind and class; existing ones count.', **_SHARED)
flags.DEFINE_string('output', None, 'generate: output file (default ./descriptions_<dataset>_n<n>.json).',
                    **_SHARED)
flags.DEFINE_bool('in_place', False, 'generate: write into the shipped asset of --dataset.', **_SHARED)
flags.DEFINE_string('base', None, 'generate: file to start from when --output does not exist yet '
                    '(default: the shipped file of --dataset, if any).', **_SHARED)
flags.DEFINE_string('cache_dir', os.path.join(os.path.expanduser('~'), '.cache', 'msta_jax', 'descriptions'),
                    'generate: answer cache, keyed by sha256 of (model, prompt).', **_SHARED)
flags.DEFINE_string('prompt', PROMPT_PATH, 'generate: prompt template (string.Template fields).', **_SHARED)
flags.DEFINE_float('temperature', 0.7, 'generate: sampling temperature.', **_SHARED)
flags.DEFINE_integer('retries', 4, 'generate: extra attempts per class after a failed one.', **_SHARED)
flags.DEFINE_float('backoff_s', 2.0, 'generate: the wait before retry k is backoff_s * 2**(k-1).', **_SHARED)
flags.DEFINE_float('timeout_s', 120.0, 'generate: HTTP timeout per request.', **_SHARED)
flags.DEFINE_string('api_key_env', 'OPENAI_API_KEY', 'generate: environment variable holding a bearer '
                    'token, sent only when set (local servers need none).', **_SHARED)


class AnswerError(ValueError):
  """The model's answer cannot be used (not JSON, wrong shape, too few usable texts): worth a retry."""


class GenerationError(RuntimeError):
  """A class got no usable answer within the retry budget; the output file keeps all earlier classes."""


# --------------------------------------------------------------------------------------------------
# Endpoint, answers and cache.


def chat(endpoint: str, model: str, prompt: str, *, temperature: float, timeout_s: float,
         api_key: str | None = None) -> str:
  """One chat completion; returns the assistant message text. Raises urllib errors as they come."""
  body = json.dumps({'model': model, 'temperature': temperature,
                     'messages': [{'role': 'user', 'content': prompt}]}).encode('utf-8')
  headers = {'Content-Type': 'application/json'}
  if api_key:
    headers['Authorization'] = f'Bearer {api_key}'
  request = urllib.request.Request(endpoint.rstrip('/') + '/chat/completions', data=body,
                                   headers=headers, method='POST')
  with urllib.request.urlopen(request, timeout=timeout_s) as response:
    raw = response.read().decode('utf-8', errors='replace')
  try:
    return json.loads(raw)['choices'][0]['message']['content']
  except (ValueError, KeyError, IndexError, TypeError) as e:
    raise AnswerError(f'not a chat completion: {raw[:200]!r}') from e


def parse_answer(content: str) -> dict[str, list[str]]:
  """{'spatial': [...], 'temporal': [...]} from the model's text, tolerating code fences and chatter."""
  start, end = content.find('{'), content.rfind('}')
  if start < 0 or end < start:
    raise AnswerError(f'no JSON object in answer: {content[:200]!r}')
  try:
    data = json.loads(content[start:end + 1])
  except json.JSONDecodeError as e:
    raise AnswerError(f'bad JSON in answer ({e}): {content[:200]!r}') from e
  if not isinstance(data, dict):
    raise AnswerError(f'answer is not a JSON object: {content[:200]!r}')
  out = {}
  for kind in descriptions.KINDS:
    texts = data.get(kind)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
      raise AnswerError(f'answer lacks a list of strings under {kind!r}: {content[:200]!r}')
    out[kind] = [' '.join(t.split()) for t in texts]
  return out


class Cache:
  """Answers on disk, one JSON file per sha256(model, prompt): reruns and resumes repeat no request."""

  def __init__(self, directory: str):
    self.directory = directory

  def _path(self, model: str, prompt: str) -> str:
    key = hashlib.sha256(json.dumps([model, prompt]).encode('utf-8')).hexdigest()
    return os.path.join(self.directory, f'{key}.json')

  def get(self, model: str, prompt: str) -> str | None:
    path = self._path(model, prompt)
    if not os.path.exists(path):
      return None
    with open(path, encoding='utf-8') as f:
      return json.load(f)['content']

  def put(self, model: str, prompt: str, content: str) -> None:
    files.write_json(self._path(model, prompt), {'model': model, 'prompt': prompt, 'content': content},
                     ensure_ascii=False)


# --------------------------------------------------------------------------------------------------
# Generation.


@dataclasses.dataclass(frozen=True)
class Endpoint:
  """Where and how to ask: `retries` extra attempts, the k-th (from 1) after `backoff_s * 2**(k-1)` s."""
  url: str
  model: str
  temperature: float = 0.7
  timeout_s: float = 120.0
  retries: int = 4
  backoff_s: float = 2.0
  api_key: str | None = None


def render_prompt(template: str, *, dataset: str, class_name: str, count: int,
                  existing: dict[str, list[str]]) -> str:
  """Fills the template; the existing texts are listed so the model writes different ones."""
  lines = [f'  - ({kind}) {t}' for kind in descriptions.KINDS for t in existing.get(kind, [])]
  return string.Template(template).substitute(
      dataset=DISPLAY_NAMES.get(dataset, dataset), class_name=class_name, count=count,
      max_words=MAX_WORDS, existing='\n'.join(lines) if lines else '  (none yet)')


def pick_new(answer: dict[str, list[str]], existing: dict[str, list[str]], need: dict[str, int], *,
             class_name: str, count_tokens: Callable[[list[str]], list[int]], context_length: int,
             threshold: float) -> dict[str, list[str]]:
  """The first `need[kind]` usable texts of each kind; AnswerError when an answer has too few.

  Usable: non-empty, within the context after tokenisation, and neither a duplicate nor a
  near-duplicate (plain content-word Jaccard) of a text of the same kind already kept for this class.
  """
  out: dict[str, list[str]] = {}
  for kind in descriptions.KINDS:
    kept = list(existing.get(kind, []))
    new: list[str] = []
    rejected: list[str] = []
    candidates = [t for t in answer[kind] if t]
    for text, n in zip(candidates, count_tokens(candidates)):
      if len(new) == need[kind]:
        break
      words = descriptions.content_words(text, class_name)
      if n > context_length:
        rejected.append(f'{n} tokens: {text!r}')
      elif any(descriptions.normalize(text) == descriptions.normalize(k) or
               descriptions.overlap(words, descriptions.content_words(k, class_name)) >= threshold
               for k in kept):
        rejected.append(f'repeats an existing text: {text!r}')
      else:
        new.append(text)
        kept.append(text)
    if len(new) < need[kind]:
      raise AnswerError(f'{class_name!r}: {len(new)} usable {kind} texts, needed {need[kind]}; '
                        f'rejected: {rejected}')
    out[kind] = new
  return out


def ask(prompt: str, endpoint: Endpoint, cache: Cache,
        accept: Callable[[dict[str, list[str]]], dict[str, list[str]]],
        sleep: Callable[[float], None] = time.sleep) -> dict[str, list[str]]:
  """accept(parsed answer) for the cached answer, else for fresh ones, retrying with backoff."""
  cached = cache.get(endpoint.model, prompt)
  if cached is not None:
    try:
      return accept(parse_answer(cached))
    except AnswerError as e:  # Cached under looser checks: ask again.
      logging.warning('Ignoring cached answer: %s', e)
  last: Exception | None = None
  for attempt in range(endpoint.retries + 1):
    if attempt:
      sleep(endpoint.backoff_s * 2 ** (attempt - 1))
    try:
      content = chat(endpoint.url, endpoint.model, prompt, temperature=endpoint.temperature,
                     timeout_s=endpoint.timeout_s, api_key=endpoint.api_key)
      result = accept(parse_answer(content))
    except urllib.error.HTTPError as e:
      if e.code not in _RETRY_STATUS:
        raise GenerationError(f'{endpoint.url}: HTTP {e.code} {e.reason}; not retrying') from e
      last = e
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError,
            AnswerError) as e:
      last = e
    else:
      cache.put(endpoint.model, prompt, content)
      return result
    logging.warning('Attempt %d/%d failed: %s', attempt + 1, endpoint.retries + 1, last)
  raise GenerationError(f'no usable answer after {endpoint.retries + 1} attempts; last error: {last}')


def generate(*, dataset: str, class_names: Sequence[str], output: str, endpoint: Endpoint, n: int,
             cache_dir: str, base: str | None = None, prompt_path: str = PROMPT_PATH,
             context_length: int = 32,
             count_tokens: Callable[[list[str]], list[int]] | None = None) -> descriptions.Descriptions:
  """Brings every class of `class_names` to `n` texts of each kind, saving `output` after each class.

  Starts from `output` when it exists (resume), else from `base` (if given), else from nothing.
  Existing texts are kept and count towards `n`; new ones are appended.
  """
  if os.path.exists(output):
    descs, source = descriptions.load(output), output
  elif base:
    descs, source = descriptions.load(base), base
  else:
    descs, source = {}, 'nothing'
  logging.info('Starting from %s: %d of %d classes have entries.', source,
               sum(c in descs for c in class_names), len(class_names))
  with open(prompt_path, encoding='utf-8') as f:
    template = f.read()
  count_tokens = count_tokens or models.Tokenizer(context_length).count_tokens
  cache = Cache(cache_dir)
  for i, name in enumerate(class_names):
    existing = {k: list(descs.get(name, {}).get(k, [])) for k in descriptions.KINDS}
    need = {k: max(0, n - len(existing[k])) for k in descriptions.KINDS}
    if not any(need.values()):
      continue
    prompt = render_prompt(template, dataset=dataset, class_name=name, count=max(need.values()),
                           existing=existing)
    accept = functools.partial(pick_new, existing=existing, need=need, class_name=name,
                               count_tokens=count_tokens, context_length=context_length,
                               threshold=descriptions.NEAR_DUPLICATE_THRESHOLD)
    try:
      new = ask(prompt, endpoint, cache, accept)
    except GenerationError as e:
      raise GenerationError(f'class {name!r}: {e} (progress so far is in {output})') from e
    descs[name] = {k: existing[k] + new[k] for k in descriptions.KINDS}
    descriptions.save(descs, output, class_names)
    logging.info('[%d/%d] %s: +%d spatial, +%d temporal', i + 1, len(class_names), name,
                 len(new['spatial']), len(new['temporal']))
  descriptions.save(descs, output, class_names)
  return descs


# --------------------------------------------------------------------------------------------------
# Command line.


def run_validate() -> int:
  """Validates the selected files; prints problems and returns the exit status."""
  if FLAGS.file:
    if not (FLAGS.classes or FLAGS.dataset):
      raise app.UsageError('--file needs --classes or --dataset to know the class list')
    targets = [(FLAGS.file, FLAGS.file, FLAGS.classes or FLAGS.dataset)]
  elif FLAGS.dataset:
    targets = [(FLAGS.dataset, FLAGS.dataset, FLAGS.classes or FLAGS.dataset)]
  else:
    targets = [(d, d, d) for d in descriptions.DATASETS]
  count_tokens = models.Tokenizer(FLAGS.context_length).count_tokens
  failed = False
  for label, source, classes in targets:
    descs, names = descriptions.load(source), descriptions.load_class_names(classes)
    problems = descriptions.validate(descs, names, context_length=FLAGS.context_length,
                                     min_per_kind=FLAGS.min_per_kind,
                                     near_duplicate_threshold=FLAGS.near_duplicate_threshold,
                                     count_tokens=count_tokens)
    texts = [t for e in descs.values() for k in descriptions.KINDS for t in e.get(k, [])]
    longest = max(count_tokens(texts), default=0)
    if problems:
      failed = True
      offending = list(dict.fromkeys(p.class_name for p in problems))
      print(f'{label}: FAIL, {len(problems)} problems in {len(offending)} classes')
      for p in problems:
        print(f'  {p}')
      print(f'{label}: offending classes: {", ".join(repr(c) for c in offending)}')
    else:
      print(f'{label}: ok, {len(names)} classes, {len(texts)} texts, '
            f'longest {longest}/{FLAGS.context_length} tokens')
  return 1 if failed else 0


def run_generate() -> int:
  """Checks the flags, then runs `generate`."""
  for name in ('dataset', 'endpoint', 'model'):
    if not getattr(FLAGS, name):
      raise app.UsageError(f'generate needs --{name}')
  if FLAGS.n < 1:
    raise app.UsageError('--n must be at least 1')
  shipped = os.path.join(descriptions.DESCRIPTIONS_DIR, f'{FLAGS.dataset}.json')
  if FLAGS.in_place:
    if FLAGS.dataset not in descriptions.DATASETS:
      raise app.UsageError('--in_place writes a shipped asset, so --dataset must be one of '
                           f'{descriptions.DATASETS}')
    output = shipped
  else:
    output = FLAGS.output or f'descriptions_{FLAGS.dataset}_n{FLAGS.n}.json'
    if os.path.abspath(os.path.dirname(output)) == os.path.abspath(descriptions.DESCRIPTIONS_DIR):
      raise app.UsageError(f'{output} is a shipped asset; pass --in_place to overwrite it on purpose')
  base = FLAGS.base or (shipped if os.path.exists(shipped) else None)
  endpoint = Endpoint(url=FLAGS.endpoint, model=FLAGS.model, temperature=FLAGS.temperature,
                      timeout_s=FLAGS.timeout_s, retries=FLAGS.retries, backoff_s=FLAGS.backoff_s,
                      api_key=os.environ.get(FLAGS.api_key_env) or None)
  generate(dataset=FLAGS.dataset, class_names=descriptions.load_class_names(FLAGS.classes or FLAGS.dataset),
           output=output, endpoint=endpoint, n=FLAGS.n, cache_dir=FLAGS.cache_dir, base=base,
           prompt_path=FLAGS.prompt, context_length=FLAGS.context_length)
  print(f'wrote {output}; check it with: python -m msta_jax.tools.descriptions validate '
        f'--file={output} --{"classes=" + FLAGS.classes if FLAGS.classes else "dataset=" + FLAGS.dataset}')
  return 0


COMMANDS = {'validate': run_validate, 'generate': run_generate}


def main(argv: Sequence[str]) -> int:
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'usage: python -m msta_jax.tools.descriptions {{{"|".join(COMMANDS)}}} [flags]')
  return COMMANDS[argv[1]]()


if __name__ == '__main__':
  app.run(main)
