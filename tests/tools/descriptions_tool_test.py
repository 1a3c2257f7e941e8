"""Tests for `python -m msta_jax.tools.descriptions`: validate, and generate against a fake local server."""
from __future__ import annotations

import http.server
import itertools
import json
import os
import re
import subprocess
import sys
import threading

import pytest
from absl import app, flags
from absl.testing import flagsaver

from msta_jax.data import descriptions as D
from msta_jax.models.tokenizer import Tokenizer
from msta_jax.tools import descriptions as tool

# Distinct nouns, so every fake text differs from every other in content, not just in wording.
NOUNS = ('lantern kettle saddle violin anchor meadow pylon glacier harbor quilt turbine orchard canoe '
         'ladder compass hammock pebble tunnel beacon trolley scarf barrel cactus domino easel falcon '
         'gazebo hydrant igloo jigsaw kiosk lagoon marble nozzle oyster parsnip quiver rickshaw sundial '
         'teapot umbrella vortex walrus xylophone yacht zeppelin').split()


class FakeChat:
  """An OpenAI-compatible /chat/completions on 127.0.0.1; `script` scripts the first replies."""

  def __init__(self):
    self.requests: list[dict] = []
    self.script: list[str] = []  # ok, 500, 400, not_json, bad_json, too_long; then ok.
    self._nouns = itertools.cycle(NOUNS)
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        fake.requests.append({'path': self.path, 'body': body})
        status, reply = fake.reply(body['messages'][-1]['content'])
        data = reply.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def log_message(self, *args):
        pass

    self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.url = f'http://127.0.0.1:{self.server.server_address[1]}/v1'
    self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.02},
                                   daemon=True)
    self.thread.start()

  def reply(self, prompt: str) -> tuple[int, str]:
    action = self.script.pop(0) if self.script else 'ok'
    if action in ('500', '400'):
      return int(action), '{"error": "scripted"}'
    if action == 'not_json':
      return 200, '<html>proxy error</html>'
    name = re.search(r'^Action class: (.+)$', prompt, re.M).group(1)
    count = int(re.search(r'Write (\d+) new SPATIAL', prompt).group(1))
    texts = {k: [f'{k} view of {name} with a {next(self._nouns)}, a {next(self._nouns)} and a '
                 f'{next(self._nouns)}.' for _ in range(count)] for k in D.KINDS}
    if action == 'too_long':
      texts['spatial'][0] = ' '.join(['a very long description that never seems to end'] * 6) + '.'
    content = '```json\n' + json.dumps(texts) + '\n```'  # Fenced, as chat models often answer.
    if action == 'bad_json':
      content = '{"spatial": ["unterminated'
    return 200, json.dumps({'choices': [{'message': {'role': 'assistant', 'content': content}}]})

  def close(self):
    self.server.shutdown()
    self.server.server_close()


@pytest.fixture
def fake():
  server = FakeChat()
  yield server
  server.close()


@pytest.fixture(scope='module')
def count_tokens():
  return Tokenizer(32).count_tokens


def base_file(path, entries: dict) -> str:
  D.save(entries, str(path))
  return str(path)


EXISTING = {'alpha': {'spatial': ['An old brass telescope on a tripod by a window.',
                                  'Star charts pinned above a cluttered wooden desk.'],
                      'temporal': ['The tube swings up, the focus turns, and the moon sharpens.',
                                   'Notes are scribbled after each glance through the eyepiece.']}}


def gen(fake_server, tmp_path, count_tokens, *, output='out.json', classes=('alpha', 'beta', 'gamma'),
        n=2, base=None, retries=2):
  endpoint = tool.Endpoint(url=fake_server.url, model='fake-model', retries=retries, backoff_s=0.0,
                           timeout_s=10.0)
  return tool.generate(dataset='toy', class_names=list(classes), output=str(tmp_path / output),
                       endpoint=endpoint, n=n, cache_dir=str(tmp_path / 'cache'), base=base,
                       count_tokens=count_tokens)


def test_generate_fills_missing_classes_only(fake, tmp_path, count_tokens):
  base = base_file(tmp_path / 'base.json', EXISTING)
  descs = gen(fake, tmp_path, count_tokens, base=base)
  assert len(fake.requests) == 2  # beta and gamma; alpha already had 2 + 2.
  assert fake.requests[0]['path'] == '/v1/chat/completions'
  assert fake.requests[0]['body']['model'] == 'fake-model'
  assert descs['alpha'] == EXISTING['alpha']
  assert D.load(str(tmp_path / 'out.json')) == descs and list(descs) == ['alpha', 'beta', 'gamma']
  assert D.validate(descs, ['alpha', 'beta', 'gamma'], count_tokens=count_tokens) == []


def test_generate_adds_more_without_repeating_existing(fake, tmp_path, count_tokens):
  base = base_file(tmp_path / 'base.json', EXISTING)
  descs = gen(fake, tmp_path, count_tokens, classes=('alpha',), n=3, base=base)
  prompt = fake.requests[0]['body']['messages'][0]['content']
  assert 'Write 1 new SPATIAL' in prompt and EXISTING['alpha']['temporal'][1] in prompt
  for kind in D.KINDS:
    assert descs['alpha'][kind][:2] == EXISTING['alpha'][kind] and len(descs['alpha'][kind]) == 3
  assert D.validate(descs, ['alpha'], min_per_kind=3, count_tokens=count_tokens) == []


@pytest.mark.parametrize('failure', ['500', 'not_json', 'bad_json', 'too_long'])
def test_generate_retries_a_failed_answer(fake, tmp_path, count_tokens, failure):
  fake.script = [failure]
  descs = gen(fake, tmp_path, count_tokens, classes=('beta',))
  assert len(fake.requests) == 2
  assert [len(descs['beta'][k]) for k in D.KINDS] == [2, 2]
  assert all(len(t.split()) < 20 for t in descs['beta']['spatial'])


def test_generate_does_not_retry_a_client_error(fake, tmp_path, count_tokens):
  fake.script = ['400']
  with pytest.raises(tool.GenerationError, match='HTTP 400'):
    gen(fake, tmp_path, count_tokens, classes=('beta',))
  assert len(fake.requests) == 1


def test_second_run_is_served_from_the_cache(fake, tmp_path, count_tokens):
  first = gen(fake, tmp_path, count_tokens, output='first.json')
  assert len(fake.requests) == 3
  second = gen(fake, tmp_path, count_tokens, output='second.json')
  assert len(fake.requests) == 3 and second == first


def test_killed_run_resumes_from_the_output(fake, tmp_path, count_tokens):
  fake.script = ['ok', '500', '500', '500']  # beta fails for good after alpha is written.
  with pytest.raises(tool.GenerationError, match="class 'beta'.*out.json"):
    gen(fake, tmp_path, count_tokens)
  assert list(D.load(str(tmp_path / 'out.json'))) == ['alpha']
  done = D.load(str(tmp_path / 'out.json'))['alpha']
  descs = gen(fake, tmp_path, count_tokens)
  assert len(fake.requests) == 4 + 2  # Only beta and gamma are asked again.
  assert descs['alpha'] == done and list(descs) == ['alpha', 'beta', 'gamma']


def test_parse_answer_needs_both_lists():
  assert tool.parse_answer('Sure! {"spatial": ["a  b"], "temporal": []} Hope it helps.') == {
      'spatial': ['a b'], 'temporal': []}
  with pytest.raises(tool.AnswerError, match="under 'temporal'"):
    tool.parse_answer('{"spatial": ["a"]}')
  with pytest.raises(tool.AnswerError, match='no JSON object'):
    tool.parse_answer('I cannot help with that.')


def run(*args: str) -> int:
  """Runs one command in-process, as `python -m msta_jax.tools.descriptions *args` would."""
  with flagsaver.flagsaver():
    return tool.main(flags.FLAGS(['descriptions', *args]))


def test_cli_validate_shipped_dataset(capsys):
  assert run('validate', '--dataset=hmdb51') == 0
  assert capsys.readouterr().out.startswith('hmdb51: ok, 51 classes, 204 texts, longest ')


def test_cli_validate_fails_naming_classes(tmp_path):
  descs = dict(EXISTING, beta={'spatial': EXISTING['alpha']['spatial'], 'temporal': ['Too few.']})
  path = base_file(tmp_path / 'bad.json', descs)
  classes = tmp_path / 'classes.json'
  classes.write_text(json.dumps(['alpha', 'beta', 'gamma']))
  cmd = [sys.executable, '-m', 'msta_jax.tools.descriptions', 'validate', f'--file={path}',
         f'--classes={classes}']
  result = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, USE_TF='0'))
  assert result.returncode == 1, result.stderr
  assert "'gamma': missing" in result.stdout
  assert "'beta' [temporal]: 1 texts, need at least 2" in result.stdout
  assert "offending classes: 'gamma', 'beta'" in result.stdout


def test_cli_generate_end_to_end_and_guards(fake, tmp_path, capsys):
  classes = tmp_path / 'classes.json'
  classes.write_text(json.dumps(['alpha', 'beta']))
  out, empty = tmp_path / 'toy.json', base_file(tmp_path / 'empty.json', {})
  # A shipped dataset name: in one pytest process tools/splits.py may own --dataset as an enum of them.
  assert run('generate', '--dataset=hmdb51', f'--classes={classes}', f'--base={empty}',
             f'--endpoint={fake.url}', '--model=m', f'--output={out}', f'--cache_dir={tmp_path / "cache"}',
             '--backoff_s=0') == 0
  assert list(D.load(str(out))) == ['alpha', 'beta'] and len(fake.requests) == 2
  assert f'--file={out} --classes={classes}' in capsys.readouterr().out
  shipped = os.path.join(D.DESCRIPTIONS_DIR, 'hmdb51.json')
  with pytest.raises(app.UsageError, match='shipped asset; pass --in_place'):
    run('generate', '--dataset=hmdb51', f'--endpoint={fake.url}', '--model=m', f'--output={shipped}')
  with pytest.raises(app.UsageError, match='needs --endpoint'):
    run('generate', '--dataset=hmdb51', '--model=m')
  with pytest.raises(app.UsageError, match='validate|generate'):
    run('describe')
