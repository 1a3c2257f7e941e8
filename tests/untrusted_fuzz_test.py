"""Fuzz test of every reader of an outside file (docs/security.md): seeded mutations of small valid
files of each format, each batch in a process capped at 3 GiB of address space.

Asserted for every mutated file: the reader returns, or raises the project's error type (a
CheckpointError naming the file) or, for videos, returns a verdict whose reason is a known one other
than the catch-all `error`; no raw exception; the process is not killed (a crash by signal or by the
cap fails the batch); peak resident memory grows by at most MEMORY_BOUND over the start of the batch
(the files are a few KB); and no code in a file runs (a pickle whose payload would create a canary
file: the canary stays absent). About 270 mutations; two batches run at a time.
"""
import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

from tests import untrusted_fuzz_worker as worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEMORY_BOUND = 256 << 20
# format -> mutations (the pickle and torch archives, where memory and code are at stake, get most).
BATCHES = {'pth': 50, 'pickle': 50, 'safetensors': 30, 'adapters': 30, 'hf_json': 30, 'own_json': 20,
           'avi': 30, 'mp4': 30}
SEED = 24


def _run(fmt: str, count: int, work: str) -> dict:
  os.makedirs(work)
  res = subprocess.run([sys.executable, '-m', 'tests.untrusted_fuzz_worker', fmt, str(SEED), str(count), work],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**os.environ, 'PYTHONPATH': ROOT, 'JAX_PLATFORMS': 'cpu'})
  assert res.returncode == 0, f'{fmt}: batch process ended with {res.returncode}: {res.stderr[-3000:]}'
  return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def reports(tmp_path_factory):
  root = tmp_path_factory.mktemp('fuzz')
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    futures = {fmt: pool.submit(_run, fmt, n, str(root / fmt)) for fmt, n in BATCHES.items()}
    return {fmt: f.result() for fmt, f in futures.items()}


@pytest.mark.parametrize('fmt', sorted(BATCHES))
def test_mutations_read_or_fail_clean_within_bounds(reports, fmt):
  report = reports[fmt]
  assert len(report['outcomes']) == BATCHES[fmt]
  raw = [o for o in report['outcomes'] if o.startswith('raw')]
  assert not raw, raw
  assert report['peak_over_start'] < MEMORY_BOUND, report['peak_over_start']
  assert not report['canary']


def test_the_fuzzer_reaches_the_readers(reports):
  """Mutations are neither all harmless nor all rejected at the first check: the torch archive and
  safetensors batches have files that still read and files refused; the pickle batch reaches both the
  unpickler's refusals and malformed-file errors."""
  for fmt in ('pth', 'safetensors'):
    outcomes = set(reports[fmt]['outcomes'])
    assert 'ok' in outcomes and len(outcomes) >= 2, (fmt, outcomes)
  assert {'UnsafePickleError', 'TorchFileError'} <= set(reports['pickle']['outcomes'])
  assert set(worker.FORMATS) == set(BATCHES)
