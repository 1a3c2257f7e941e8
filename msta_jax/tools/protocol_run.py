"""Runs every member of a protocol (all shots / seeds), skips finished ones, resumes unfinished ones, and
writes the summary the literature's way (protocol_aggregate.py):

    python -m msta_jax.tools.protocol_run --protocol=few_shot --dataset=hmdb51 --workdir=runs/hmdb_fs \
        [--methods=msta,frame_average] [--shots=2,16] [--seeds=0,1] [--backbone=PATH] [--args=backbone=clip] \
        [--dry_run] [--config.optim.lr=5e-4 ...]

Members run IN THIS PROCESS, one after another, through `trainer.train_and_evaluate(config, DIR/<run>)`,
with XLA's persistent compilation cache in DIR/.xla_cache, so shapes repeated across members compile once.
A member is finished when DIR/<run>/results.json exists; an unfinished one resumes from its checkpoints
(the trainer's own resume). The run directory name is the config, method, K and seed, plus a short hash of
everything else that changes the run (--args, --backbone, --config.* overrides): a run with another data
seed or learning rate never reuses, nor collides with, the first. Each run directory gets a member.json
(what the runner asked for, and the equivalent `python -m msta_jax.main` command).

Writes DIR/summary.md, DIR/summary.csv and DIR/summary.png over every finished run in DIR (several
protocols may share a DIR); for the synthetic dataset also DIR/demo_results.json, one row per run and
test split, merged with the rows other invocations wrote there (demo_results.py). launch/run_protocol.py
runs this program too.

One process on one host: multi-host jobs run each member's command (--dry_run prints them) through
launch/tpu_pod.sh or launch/slurm.sh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
from absl import flags
from absl import logging

from msta_jax import config_files
from msta_jax import files
from msta_jax import paths
from msta_jax.data import pipeline
from msta_jax.tools import cli
from msta_jax.tools import demo_results
from msta_jax.tools import protocol_aggregate
from msta_jax.train import from_config
from msta_jax.train import trainer

PROTOCOLS = ('few_shot', 'base_to_novel', 'zero_shot', 'supervised')
DATASETS = ('hmdb51', 'ucf101', 'ssv2', 'k400', 'synthetic')
ALIASES = {'hmdb': 'hmdb51', 'ucf': 'ucf101', 'kinetics400': 'k400', 'something_something_v2': 'ssv2'}
# (protocol, dataset) -> config file of the real-video protocols.
CONFIGS = {
    ('few_shot', 'hmdb51'): 'configs/hmdb_fewshot.py',
    ('few_shot', 'ucf101'): 'configs/ucf_fewshot.py',
    ('few_shot', 'ssv2'): 'configs/ssv2_fewshot.py',
    ('base_to_novel', 'k400'): 'configs/k400_b2n.py',
    ('base_to_novel', 'hmdb51'): 'configs/hmdb_b2n.py',
    ('base_to_novel', 'ucf101'): 'configs/ucf_b2n.py',
    ('base_to_novel', 'ssv2'): 'configs/ssv2_b2n.py',
    ('zero_shot', 'k400'): 'configs/k400_zeroshot.py',
    ('supervised', 'k400'): 'configs/k400_supervised.py',
}
SYNTHETIC_CONFIG = 'configs/synthetic.py'
DEFAULT_SHOTS = {'real': (2, 4, 8, 16), 'synthetic': (16,)}
# Training seeds; for base-to-novel on the real datasets the seed also picks ViFi-CLIP's list fs_base_s<seed>.
DEFAULT_SEEDS = {'few_shot': (0,), 'base_to_novel': (1, 2, 3), 'zero_shot': (0,), 'supervised': (0,)}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a protocol: a config file with its arguments and overrides, in its own directory."""
  protocol: str
  dataset: str
  method: str
  shots: int | None
  seed: int
  config_file: str                 # Relative to the repository root, as in the printed command.
  args: str                        # The config's ':args'.
  overrides: tuple[str, ...]       # '--config.a.b=v' flags.
  variant: str                     # '' or the short hash of what else changes the run.
  workdir: str

  @property
  def name(self) -> str:
    return os.path.basename(self.workdir)

  def command(self) -> str:
    """The equivalent single-run command line (run from the repository root)."""
    argv = ['python', '-m', 'msta_jax.main', f'--config={self.config_file}:{self.args}', f'--workdir={self.workdir}',
            *self.overrides]
    return ' '.join(shlex.quote(a) for a in argv)

  def finished(self) -> bool:
    return (paths.resolve(self.workdir) / 'results.json').is_file()


def _variant(extra_args: str, backbone: str, overrides: Sequence[str]) -> str:
  if not (extra_args or backbone or overrides):
    return ''
  key = json.dumps({'args': extra_args, 'backbone': backbone, 'overrides': list(overrides)}, sort_keys=True)
  return hashlib.sha1(key.encode()).hexdigest()[:8]


def plan(protocol: str, dataset: str, workdir: str, *, methods: Sequence[str] = ('msta',),
         shots: Sequence[int] | None = None, seeds: Sequence[int] | None = None, backbone: str = '',
         extra_args: str = '', overrides: Sequence[str] = ()) -> list[Member]:
  """The members of `protocol` on `dataset`: methods x shots (few-shot) x seeds."""
  dataset = ALIASES.get(dataset, dataset)
  if protocol not in PROTOCOLS:
    raise ValueError(f'--protocol={protocol}; known: {", ".join(PROTOCOLS)}')
  if dataset not in DATASETS:
    raise ValueError(f'--dataset={dataset}; known: {", ".join(DATASETS)}')
  synthetic = dataset == 'synthetic'
  if not synthetic and (protocol, dataset) not in CONFIGS:
    offered = sorted(d for p, d in CONFIGS if p == protocol)
    why = ' (zero-shot trains on k400, then evaluates HMDB51, UCF101, K600)' if protocol == 'zero_shot' else ''
    raise ValueError(f'--protocol={protocol} runs on {", ".join(offered + ["synthetic"])}, not {dataset}{why}')
  if shots and protocol != 'few_shot':  # One command line for every protocol (launch/demo.sh) stays valid.
    logging.info('--shots applies to few_shot only: ignored for %s', protocol)
  if ',' in backbone:
    raise ValueError(f'--backbone={backbone!r}: config arguments are comma separated, so the path cannot hold a '
                     'comma')
  # The runner sets these itself (and names run directories after them): a second value would contradict it.
  own = {'protocol': '--protocol', 'method': '--methods', 'shots': '--shots', 'seed': '--seeds',
         'init': '--backbone', 'backbone': '--backbone'}
  for item in filter(None, extra_args.split(',')):
    key = item.split('=', 1)[0].strip()
    if key in own and not (key == 'backbone' and not synthetic):  # Real configs: backbone=viclip|clip.
      raise ValueError(f'--args={extra_args!r}: give {key} with {own[key]}')
  config_files.check_override_form(overrides)
  shots_list = [None]
  if protocol == 'few_shot':
    shots_list = list(shots or DEFAULT_SHOTS['synthetic' if synthetic else 'real'])
  seed_list = list(seeds if seeds else DEFAULT_SEEDS[protocol])
  config_file = SYNTHETIC_CONFIG if synthetic else CONFIGS[(protocol, dataset)]
  stem = os.path.basename(config_file)[:-3] + (f'-{protocol}' if synthetic else '')
  variant = _variant(extra_args, backbone, overrides)
  members = []
  for method in methods:
    for k in shots_list:
      for seed in seed_list:
        args = [f'protocol={protocol}'] if synthetic else []
        args += [f'method={method}'] + ([f'shots={k}'] if k is not None else []) + [f'seed={seed}']
        if backbone:
          args.append(f'{"backbone" if synthetic else "init"}={backbone}')
        if extra_args:
          args.append(extra_args)
        name = '-'.join([stem, method] + ([f'k{k}'] if k is not None else []) + [f's{seed}'] +
                        ([variant] if variant else []))
        members.append(Member(protocol, dataset, method, k, seed, config_file, ','.join(args), tuple(overrides),
                              variant, os.path.join(workdir, name)))
  return members


# --------------------------------------------------------------------------------------------------
# Configs.


def build_config(member: Member):
  """The member's locked config, parsed exactly as `python -m msta_jax.main` parses its flags."""
  return config_files.load(f'{os.path.join(REPO, member.config_file)}:{member.args}', member.overrides,
                           where=member.name)


def preflight(configs: Sequence[Any]) -> None:
  """Stops before any training when weights or a built dataset are missing; the errors say what to
  download or build. Generated datasets (the synthetic set) are made by the trainer itself."""
  for config in configs:
    from_config.validate(config)
    d = config.data
    if d.dataset == 'synthetic':
      continue
    names = [d.name] if (d.train_split or d.val_split or any(':' not in s for s in d.test_splits)) else []
    names += [s.split(':', 1)[0] for s in d.test_splits if ':' in s]
    for name in dict.fromkeys(names):
      pipeline.resolve_dataset_dir(d.data_dir, name)


# --------------------------------------------------------------------------------------------------
# Running.


def member_record(member: Member, config) -> dict[str, Any]:
  return {'protocol': member.protocol, 'dataset': member.dataset, 'method': member.method,
          'backbone': config.model.name, 'shots': member.shots, 'seed': member.seed, 'variant': member.variant,
          'config': member.config_file, 'args': member.args, 'overrides': list(member.overrides),
          'test_splits': list(config.data.test_splits), 'command': member.command()}


def run(members: Sequence[Member], train_fn: Callable[[Any, str], Any] | None = None) -> None:
  """Runs the unfinished members in order (train_fn: the trainer, replaceable in tests)."""
  configs = [build_config(m) for m in members]
  todo = [(m, c) for m, c in zip(members, configs) if not m.finished()]
  preflight([c for _, c in todo])
  if train_fn is None:
    train_fn = trainer.train_and_evaluate
  for m, config in zip(members, configs):
    if m.finished():  # Also runs made elsewhere with the printed command: the summary needs member.json.
      logging.info('%s: finished (results.json), skipped', m.name)
      files.write_json(os.path.join(m.workdir, 'member.json'), member_record(m, config), indent=1, sort_keys=True)
  for i, (m, config) in enumerate(todo):
    resumed = (paths.resolve(m.workdir) / 'checkpoints').is_dir()
    logging.info('member %d/%d %s (%s): %s', i + 1, len(todo), m.name, 'resuming' if resumed else 'new',
                 m.command())
    files.write_json(os.path.join(m.workdir, 'member.json'), member_record(m, config), indent=1, sort_keys=True)
    train_fn(config, m.workdir)


def finished_runs(workdir: str) -> list[protocol_aggregate.Run]:
  """Every finished member run under `workdir` (member.json + results.json)."""
  runs = []
  root = paths.resolve(workdir)  # Also a gs:// URL.
  for d in sorted(root.iterdir()) if root.is_dir() else []:
    member, results = d / 'member.json', d / 'results.json'
    if not (member.is_file() and results.is_file()):
      continue
    m, results = json.loads(member.read_text(encoding='utf-8')), json.loads(results.read_text(encoding='utf-8'))
    runs.append(protocol_aggregate.Run(m['protocol'], m['dataset'], m['method'], m['backbone'], m['variant'],
                                     m['shots'], m['seed'], results, tuple(m['test_splits'])))
  return runs


def write_summary(workdir: str) -> list[str]:
  """summary.md / .csv / .png over every finished run in `workdir` (held-out selection), plus
  summary_authors.* (test-set selection) when every run has test-set evaluations; returns the paths."""
  runs = finished_runs(workdir)
  written = []
  columns = ('selected', 'authors') if protocol_aggregate.has_test_set_selection(runs) else ('selected',)
  for column in columns:
    rows = protocol_aggregate.summarize(runs, column)
    if not rows:
      return []
    stem = 'summary' if column == 'selected' else 'summary_authors'
    md, csv_path, png = (os.path.join(workdir, f'{stem}.{e}') for e in ('md', 'csv', 'png'))
    files.write_atomic(md, protocol_aggregate.markdown(rows, f'Protocol summary: {workdir}', column))
    protocol_aggregate.write_csv(rows, csv_path)
    written += [md, csv_path]
    if protocol_aggregate.plot(rows, png, column):
      written.append(png)
  return written


# --------------------------------------------------------------------------------------------------
# Command line.


def _flags() -> flags.FlagValues:
  """A private registry: imported next to other tools, and --config.* overrides pass through it."""
  fv = flags.FlagValues()
  flags.DEFINE_enum('protocol', None, PROTOCOLS, 'The protocol to run.', flag_values=fv)
  flags.DEFINE_string('dataset', None, f'{", ".join(DATASETS)}', flag_values=fv)
  flags.DEFINE_string('workdir', None, 'One directory per member run below it, plus the summary.', flag_values=fv)
  flags.DEFINE_list('methods', ['msta'], 'Comma-separated configs/methods.py names.', flag_values=fv)
  flags.DEFINE_list('shots', None, 'Few-shot K values (default 2,4,8,16; synthetic 16); ignored by other '
                    'protocols.', flag_values=fv)
  flags.DEFINE_list('seeds', None, 'Training seeds (default: base_to_novel 1,2,3, else 0); real base-to-novel: '
                    '1..3, also the training list.', flag_values=fv)
  flags.DEFINE_string('backbone', '', "Backbone weights: the config's init= (synthetic: backbone=) arg; "
                      '`random` for a seeded random init.', flag_values=fv)
  flags.DEFINE_string('args', '', 'More config arguments for every member, e.g. backbone=clip.', flag_values=fv)
  flags.DEFINE_bool('dry_run', False, 'Print the member commands, run nothing.', flag_values=fv)
  flags.DEFINE_bool('verbose', False, 'Library INFO logs (Orbax, grain, TFDS).', flag_values=fv)
  for name in ('protocol', 'dataset', 'workdir'):
    flags.mark_flag_as_required(name, flag_values=fv)
  return fv


def _ints(name: str, values: list[str] | None) -> list[int] | None:
  try:
    return None if values is None else [int(v) for v in values if v.strip()]
  except ValueError:
    raise ValueError(f'--{name}={",".join(values)} is not a comma-separated list of integers') from None


def main(argv: Sequence[str]) -> int:
  """The CLI (argv[0] is the program; other arguments are --config.KEY=VALUE overrides for every member);
  returns the exit status (2: bad arguments, 1: a member could not start or failed)."""
  fv = _flags()
  if '--help' in argv or '-h' in argv:
    print(f'{__doc__}\n{fv.get_help()}')
    return 0
  try:
    rest = fv(list(argv), known_only=True)[1:]
    members = plan(fv.protocol, fv.dataset, fv.workdir, methods=[m for m in fv.methods if m],
                   shots=_ints('shots', fv.shots), seeds=_ints('seeds', fv.seeds), backbone=fv.backbone,
                   extra_args=fv.args, overrides=rest)
    if fv.dry_run:
      commands = []
      for m in members:
        build_config(m)  # Bad arguments or override keys fail before anything is printed.
        commands.append(m.command())
      print('\n'.join(commands))
      return 0
  except (ValueError, flags.Error) as e:
    print(f'run_protocol: {e}', file=sys.stderr)
    return 2
  if not fv.verbose:
    cli.quiet_libraries()
  # Before JAX compiles: every member's compilations go to one persistent cache (unless already set).
  os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.fspath(paths.resolve(fv.workdir) / '.xla_cache'))
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.environ['JAX_COMPILATION_CACHE_DIR'])
  status = 0
  try:
    run(members)
  except from_config.WeightsMissingError as e:  # Said with this command's flags, not main's.
    print(f'run_protocol: {e.message("--backbone=PATH", "--backbone=random")}', file=sys.stderr)
    status = 1
  except (ValueError, FileNotFoundError, flags.Error) as e:  # Missing datasets, bad values.
    print(f'run_protocol: {e}', file=sys.stderr)
    status = 1
  finally:  # Whatever finished is summarised, also when a member failed or was interrupted.
    written = write_summary(fv.workdir)
    if fv.dataset == 'synthetic' and any(m.finished() for m in members):
      written.append(demo_results.write_demo_results(fv.workdir, members))
    for path in written:
      print(f'wrote {path}')
  return status


if __name__ == '__main__':
  cli.run(main)
