"""The embedded known-answer demo in ONE process: pre-training, the three synthetic protocols, the report.

    python -m msta_jax.tools.demo --workdir=runs/demo [--config.data.seed=7 ...]     (launch/demo.sh)

1. pre-trains the tiny frame-wise backbone (configs/synthetic.py:protocol=pretrain) in
   DIR/pretrain_<key>, unless its results.json is there (<key>: a hash of the --config.* overrides);
2. runs zero_shot, frame_average, msta and msta_no_temporal_conv on the synthetic few-shot (K=16),
   base-to-novel and zero-shot protocols (the protocol runner's members, DIR/<run>, skipped when finished,
   resumed when not);
3. writes DIR/summary.* and DIR/demo_results.json and prints the table and the known-answer verdict
   (demo_report.py); exit status 1 when the known answer does not show.

Why one process: a Python process that imports TensorFlow (TFDS, clu) and builds the CLIP tokenizer spends
~10 s before its first step on 2 cores; four of them (pre-training and one runner per protocol) were
~30 s of a demo whose budget is 10 minutes. Every run is the same as its printed command
(`python -m msta_jax.main ...` in each DIR/<run>/member.json) would make it: the runs share nothing but
the process, the tokenizer and XLA's compilation cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence

import jax
from absl import flags

from msta_jax import config_files
from msta_jax.tools import cli
from msta_jax.tools import demo_report
from msta_jax.tools import demo_results
from msta_jax.tools import protocol_run
from msta_jax.train import trainer

PROTOCOLS = ('few_shot', 'base_to_novel', 'zero_shot')
METHODS = ('zero_shot', 'frame_average', 'msta', 'msta_no_temporal_conv')
SHOTS = 16
SEED = 1


def pretrain_dir(workdir: str, overrides: Sequence[str]) -> str:
  """DIR/pretrain_<first 10 hex of sha256 of the overrides, one per line> (as launch/demo.sh named it)."""
  key = hashlib.sha256(''.join(f'{o}\n' for o in overrides or ['']).encode()).hexdigest()[:10]
  return os.path.join(workdir, f'pretrain_{key}')


def pretrain(workdir: str, overrides: Sequence[str]) -> str:
  """The pre-trained backbone's directory (DIR/pretrain_<key>/backbone), trained here unless finished."""
  pre = pretrain_dir(workdir, overrides)
  if not os.path.isfile(os.path.join(pre, 'results.json')):
    print(f'== pre-training the tiny backbone ({pre})', flush=True)
    config = config_files.load(f'{os.path.join(protocol_run.REPO, protocol_run.SYNTHETIC_CONFIG)}:protocol=pretrain',
                               overrides, where='the demo\'s pre-training')
    trainer.train_and_evaluate(config, pre)
  return os.path.join(pre, 'backbone')


def run(workdir: str, overrides: Sequence[str]) -> list[protocol_run.Member]:
  """Pre-training and every protocol's members; returns the members (finished ones included)."""
  backbone = pretrain(workdir, overrides)
  members = []
  for protocol in PROTOCOLS:
    print(f'== {protocol}', flush=True)
    mine = protocol_run.plan(protocol, 'synthetic', workdir, methods=METHODS, shots=[SHOTS], seeds=[SEED],
                             backbone=backbone, overrides=overrides)
    protocol_run.run(mine)
    members += mine
  return members


def _flags() -> flags.FlagValues:
  fv = flags.FlagValues()
  flags.DEFINE_string('workdir', 'runs/demo', 'Pre-training, one directory per run, summaries.', flag_values=fv)
  flags.DEFINE_bool('verbose', False, 'Library INFO logs (Orbax, grain, TFDS).', flag_values=fv)
  flags.DEFINE_integer('started_at', 0, 'Unix time the demo started (launch/demo.sh: before the venv check), '
                       'for the wall time it prints; 0: when this program started.', flag_values=fv)
  return fv


def main(argv: Sequence[str]) -> int:
  """The CLI; other arguments are --config.KEY=VALUE overrides for every run. Exit status 0 when the known
  answer shows, 1 when it does not or a run failed, 2 for bad arguments."""
  start = time.time()
  fv = _flags()
  if cli.print_help_if_asked(argv, __doc__, fv):
    return 0
  try:
    overrides = fv(list(argv), known_only=True)[1:]
    config_files.check_override_form(overrides)
  except (ValueError, flags.Error) as e:
    print(f'demo: {e}', file=sys.stderr)
    return 2
  if not fv.verbose:
    cli.quiet_libraries()
  workdir = os.path.abspath(fv.workdir)
  os.makedirs(workdir, exist_ok=True)
  # Before JAX compiles: every run's compilations go to one persistent cache (unless already set).
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.environ.get('JAX_COMPILATION_CACHE_DIR') or
                      os.path.join(workdir, '.xla_cache'))
  members = run(workdir, overrides)
  results = demo_results.write_demo_results(workdir, members)
  for path in protocol_run.write_summary(workdir) + [results]:
    print(f'wrote {path}')
  with open(results, encoding='utf-8') as f:
    rows = json.load(f)
  return 0 if demo_report.report(rows, round(time.time() - (fv.started_at or start))) else 1


if __name__ == '__main__':
  cli.run(main)
