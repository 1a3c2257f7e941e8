"""XLA compilation: options for forward-only programs (evaluation, predict, text embeddings), and what a
compiled program costs (FLOPs, memory), as the summary tool and the benchmarks read it.

jaxlib 0.10's XLA:CPU hands every dot to YNNPACK. For forward passes, Eigen's GEMM was faster on the
2-core AVX-512 CPU measured in BENCHMARKS.md (CLIP-B/16 image embeddings 0.97x -> 1.15x PyTorch;
ViCLIP-B/16 video embeddings about 2% faster), so those programs keep YNNPACK for reductions only.
Train steps keep XLA's defaults: there, YNNPACK's transposed GEMMs of the backward pass won (full
fine-tuning step 18.5 s vs 19.5 s with Eigen). Other backends get no options.
"""
from __future__ import annotations

import jax

CPU_FORWARD = {'xla_cpu_experimental_ynn_fusion_type': 'LIBRARY_FUSION_TYPE_REDUCE'}


def forward_options() -> dict[str, str] | None:
  """`compiler_options` for jax.jit of a forward-only program on the default backend."""
  return dict(CPU_FORWARD) if jax.default_backend() == 'cpu' else None


def jit_forward(fn, **jit_kwargs):
  """jax.jit of a forward-only program (no gradients taken through it), with forward_options()."""
  return jax.jit(fn, compiler_options=forward_options(), **jit_kwargs)


def flops(compiled) -> float:
  """XLA's FLOP count of a compiled program (cost analysis; 0 where the backend gives none)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get('flops', 0.0))


def memory_bytes(compiled) -> tuple[int | None, str]:
  """(bytes the compiled program holds at once, how that was counted): arguments + outputs +
  temporaries - donated aliases; (None, 'unavailable') without a memory analysis.

  Not `peak_memory_in_bytes`: XLA:CPU reports arguments + outputs there and leaves the temporaries
  (activations, workspace) out, so it read below the temporaries alone for a B/16 train step.
  """
  mem = compiled.memory_analysis()
  if mem is None:
    return None, 'unavailable'
  total = mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes - mem.alias_size_in_bytes
  return int(total), 'arguments+outputs+temporaries-aliased'
