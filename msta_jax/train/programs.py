"""The compiled programs of a run, built one way for the trainer and for the summary tool's memory plan:
the train step jitted with the run's shardings on the padded global batch (msta_jax.train.batching),
compiled ahead of time, and what a compiled program holds per device.

XLA:CPU's figures are planning figures for accelerators: the buffer sizes are the per-device shapes
of the partitioned program, but the schedule (which buffers live at once) is XLA:CPU's, chosen by
`xla_cpu_scheduler_type` (SCHEDULERS); TPU and GPU compilers schedule on their own.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from msta_jax import compilation
from msta_jax.train import feed as feed_lib
from msta_jax.train import losses
from msta_jax.train import nonfinite
from msta_jax.train import step as step_lib
from msta_jax.train import tasks

# XLA:CPU's schedulers as `compiler_options` (None: XLA's default, what a run uses).
SCHEDULERS = {'default': None,
              'memory_optimized': {'xla_cpu_scheduler_type': 'CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED'}}


def compile_train_step(config, model, tx, labels: dict, mesh: jax.sharding.Mesh, state_sh: dict, frozen_sh: dict,
                       state, frozen, batch_abstract: dict, task: dict, clip, compiler_options: dict | None = None):
  """The train step compiled for these shardings and the (padded, sharded) abstract batch. `state`,
  `frozen` and `task` may be arrays or ShapeDtypeStructs. Pixels arrive as the loader sends them (uint8,
  or float32 0..1) and are normalised in the step with `clip`'s mean/std (feed.normalizing_step);
  `optim.skip_nonfinite` guards the step (nonfinite.guard); the state and the batch are donated."""
  return compile_lowered(lower_train_step(config, model, tx, labels, mesh, state_sh, frozen_sh, state, frozen,
                                          batch_abstract, task, clip), compiler_options)


def compile_lowered(lowered: jax.stages.Lowered, compiler_options: dict | None = None) -> jax.stages.Compiled:
  with _donation_quiet():
    return lowered.compile(compiler_options)


@contextlib.contextmanager
def _donation_quiet():
  """The batch is donated to free it early; no output can reuse it, which jax would warn about."""
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='Some donated buffers were not usable')
    yield


def lower_train_step(config, model, tx, labels: dict, mesh: jax.sharding.Mesh, state_sh: dict, frozen_sh: dict,
                     state, frozen, batch_abstract: dict, task: dict, clip) -> jax.stages.Lowered:
  """compile_train_step's program, lowered and not yet compiled (the scale test compiles each distinct
  program once)."""
  repl = NamedSharding(mesh, P())
  step_fn = step_lib.make_train_step(model=model, tx=tx, labels=labels, loss_fn=losses.get_loss(config.loss.name),
                                     loss_kwargs=tasks.loss_kwargs(config), accum_steps=config.optim.accum_steps)
  step_fn = feed_lib.normalizing_step(step_fn, clip)
  if config.optim.skip_nonfinite:
    step_fn = nonfinite.guard(step_fn)
  batch_sh = jax.tree.map(lambda x: x.sharding, batch_abstract)
  jitted = jax.jit(step_fn, in_shardings=(state_sh, frozen_sh, batch_sh, jax.tree.map(lambda _: repl, task)),
                   out_shardings=(state_sh, repl), donate_argnums=(0, 2))
  with _donation_quiet():
    return jitted.lower(state, frozen, batch_abstract, task)


def memory(compiled) -> dict[str, Any]:
  """Per-device bytes of a compiled program (compilation.memory_bytes) and XLA's parts of it."""
  total, source = compilation.memory_bytes(compiled)
  mem = compiled.memory_analysis()
  parts = {} if mem is None else {k: int(getattr(mem, f'{k}_size_in_bytes'))
                                  for k in ('argument', 'output', 'temp', 'alias')}
  return dict(parts, bytes=total, source=source)


def memory_note(compiled) -> str:
  m = memory(compiled)
  if m['bytes'] is None:
    return 'no memory analysis on this backend'
  return (f"{m['bytes'] / 2**30:.2f} GiB per device (arguments {m['argument'] / 2**20:.1f} MiB, temporaries "
          f"{m['temp'] / 2**20:.1f} MiB, outputs {m['output'] / 2**20:.1f} MiB, aliased {m['alias'] / 2**20:.1f} MiB)")
