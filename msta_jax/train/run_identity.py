"""What a checkpoint was trained on, and the check that a resumed run trains on the same.

A checkpoint's `meta` records the config and `dataset_identity` (builder folder and version, and per
training/validation split its size and a hash of its metadata entry: class list, source list, list
hash where the builder stored one). Resuming with a different dataset, or with a config key that
alters training, is refused with the differences; `MAY_CHANGE` lists the keys that may change
(they do not alter the parameters a step produces), and `--config.checkpoint.resume_force=True`
resumes anyway, logging the differences.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from absl import logging

# Keys (or sections, ending in '.') that may differ between a checkpoint and the run resuming it.
MAY_CHANGE = (
    'log_every_steps',   # Logging only.
    'mesh', 'sharding',  # Device count and placement: state restores onto the new shardings exactly.
    'checkpoint.',       # How often and how many checkpoints are written; resume_force itself.
    'data.data_dir',     # Where the data lives (its identity is checked separately).
    'data.num_threads', 'data.num_workers',  # Loader parallelism: batches do not depend on it.
    'data.decoded_cache_mb',  # Decoded frames kept in memory: the same pixels as decoding again.
    'data.allow_partial',  # Whether a partial dataset may be used at all (its identity is checked separately).
    'transfer_guard',      # A check on the loop, not an input to it.
    'eval.batch_size', 'eval.clips', 'eval.crops', 'data.test_splits', 'eval.base_novel',  # Test-time only.
    'export_backbone',
    'memory_limit_bytes',  # The pre-flight memory check's limit.
    'distributed.',        # Multi-process settings (peer timeout).
    'total_steps',       # Extends (or shortens) a run; the learning-rate schedule follows the new length.
)


def dataset_identity(*srcs) -> dict[str, Any]:
  """Identity of the splits a run trains and selects on (None entries skipped)."""
  out: dict[str, Any] = {}
  for src in srcs:
    if src is None:
      continue
    out.setdefault('dataset', '/'.join(src.path.rstrip('/').split('/')[-3:]))
    entry = json.dumps(src.metadata, sort_keys=True, default=str).encode()
    out[src.split] = {'num_examples': len(src), 'metadata_sha256': hashlib.sha256(entry).hexdigest()[:16]}
  return out


def _flat(d: Any, prefix: str = '') -> dict[str, Any]:
  if not isinstance(d, dict):
    return {prefix[:-1]: d}
  out: dict[str, Any] = {}
  for k, v in d.items():
    out.update(_flat(v, f'{prefix}{k}.'))
  return out


def _may_change(key: str) -> bool:
  return any(key == m or (m.endswith('.') and key.startswith(m)) for m in MAY_CHANGE)


def differences(old_meta: dict, new_meta: dict) -> list[str]:
  """Lines 'key: old -> new' for every training-relevant difference (config keys and dataset)."""
  old_cfg, new_cfg = _flat(old_meta.get('config', {})), _flat(new_meta['config'])
  lines = [f'config.{k}: {old_cfg.get(k, "<absent>")!r} -> {new_cfg.get(k, "<absent>")!r}'
           for k in sorted(set(old_cfg) | set(new_cfg))
           if not _may_change(k) and json.dumps(old_cfg.get(k)) != json.dumps(new_cfg.get(k))]
  if 'dataset_identity' in old_meta and old_meta['dataset_identity'] != new_meta['dataset_identity']:
    lines.append(f'dataset: {old_meta["dataset_identity"]} -> {new_meta["dataset_identity"]}')
  return lines


def check_resume(workdir: str, step: int, old_meta: dict, new_meta: dict, force: bool) -> None:
  """Raises ValueError listing what changed since the checkpoint (unless `force`: then a warning)."""
  diff = differences(old_meta, new_meta)
  if not diff:
    return
  text = '\n  '.join(diff)
  if force:
    logging.warning('%s: resuming step %d despite changes (checkpoint.resume_force=True):\n  %s', workdir, step, text)
    return
  raise ValueError(
      f'{os.path.join(workdir, "checkpoints")} step {step} was trained with other inputs; changed:\n  {text}\n'
      'Use the original config and data, a new --workdir, or --config.checkpoint.resume_force=True to resume '
      f'anyway. Keys that may change on resume: {", ".join(MAY_CHANGE)}.')
