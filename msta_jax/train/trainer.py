"""The one trainer for every protocol and method: `train_and_evaluate(config, workdir)`.

Protocols and methods differ in config and data (which splits, which class lists, what trains, which
loss); the loop never branches on a protocol, and on one method only: a linear probe
(`method == 'linear_probe'`) gets class weights of its own, initialised from the class prompts, added
to the parameters. Read top to bottom: setup, data, model, task inputs, shardings, state (fresh or
resumed), the compiled step, the loop, then model selection on the validation split and ONE
evaluation of the selected checkpoint on each test split.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from msta_jax import models
from msta_jax import paths
from msta_jax.data import pipeline, prepare, transforms
from msta_jax.train import batching
from msta_jax.train import checkpointing
from msta_jax.train import evaluate
from msta_jax.train import from_config
from msta_jax.train import losses
from msta_jax.train import outputs
from msta_jax.train import partition
from msta_jax.train import programs
from msta_jax.train import sharding
from msta_jax.train import step as step_lib
from msta_jax.train import tasks


def _note(msg: str, *args) -> None:
  logging.info('NOTE: ' + msg, *args)


def _global(mesh, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Process-local numpy batch -> global arrays sharded along 'data' on axis 0."""
  sh = NamedSharding(mesh, P('data'))
  return {k: jax.make_array_from_process_local_data(sh, np.asarray(v)) for k, v in local.items()}


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  # ####################################################################################################
  # Setup: validation of the config, mesh, writers.
  # ####################################################################################################
  from_config.validate(config)
  paths.resolve(workdir).mkdir(parents=True, exist_ok=True)  # Also a gs:// URL (never os.path.abspath).
  mesh = sharding.make_mesh(config)
  pid, pcount = jax.process_index(), jax.process_count()
  writer = outputs.metric_writer(workdir, pid)
  _note('%d processes, %d devices, mesh %s', pcount, jax.device_count(), dict(mesh.shape))
  if pid == 0:
    (paths.resolve(workdir) / 'config.json').write_text(config.to_json_best_effort(sort_keys=True, indent=1))

  # ####################################################################################################
  # Data: build what can be generated (the synthetic set), open the splits.
  # ####################################################################################################
  if pid == 0:
    prepare.ensure(config.data)  # Process 0 generates what can be generated; the others wait for it.
  if pcount > 1:
    multihost_utils.sync_global_devices('msta_jax: dataset ready')
  d = config.data
  name = prepare.dataset_name(d)
  train_src = pipeline.open_split(d.data_dir, name, d.train_split) if d.train_split else None
  val_src = pipeline.open_split(d.data_dir, name, d.val_split) if d.val_split else None
  test_srcs = {s: pipeline.open_split(d.data_dir, *(s.split(':', 1) if ':' in s else (name, s)))
               for s in d.test_splits}

  # ####################################################################################################
  # Model: backbone weights (loaded or random), adapters, freezing rules.
  # ####################################################################################################
  rng = jax.random.PRNGKey(config.seed)
  rng_backbone, rng_adapters, rng_state = jax.random.split(rng, 3)
  arch, backbone_params = from_config.load_backbone(config, rng_backbone)
  model = from_config.build_model(config, arch)
  backbone = from_config.build_model(config, arch, adapters=False)
  adapted = model.msta is not None or model.lora is not None or model.adaptformer is not None
  params = models.add_adapters(model, backbone_params, rng_adapters) if adapted else backbone_params
  if config.method == 'linear_probe':  # The one method with parameters of its own outside the model.
    if train_src is None:
      raise ValueError('method linear_probe needs config.data.train_split')
    params = dict(params, probe=tasks.linear_probe_init(
        backbone, backbone_params, models.Tokenizer(arch.text.context_length), config.loss.template,
        train_src.classes))
  backbone_fp = checkpointing.fingerprint(backbone_params)
  labels = partition.param_labels(params, config.freeze)
  trainable, frozen = partition.split(params, labels)
  logging.info('Parameters (%s):\n%s', config.model.init or 'random init', partition.table(params, labels))
  clip = pipeline.ClipSpec(arch.vision.num_frames, arch.vision.image_size, tuple(arch.mean), tuple(arch.std))

  # ####################################################################################################
  # Task inputs: class prompts, description targets (computed once, with the frozen text branch).
  # ####################################################################################################
  tok = models.Tokenizer(arch.text.context_length)
  task = {}
  training = train_src is not None and config.optim.epochs > 0
  if training and config.loss.name == 'classification':
    task = tasks.class_task(tok, config.loss.template, train_src.classes)
    if config.loss.consistency_weight:
      descs = tasks.descriptions(config, train_src)
      task.update(losses.consistency_targets(backbone, backbone_params, descs, train_src.classes,
                                             config.loss.num_descriptions))
      _note('consistency targets for %d classes from %d+%d descriptions each', len(train_src.classes),
            config.loss.num_descriptions, config.loss.num_descriptions)

  # ####################################################################################################
  # Input pipeline and optimiser.
  # ####################################################################################################
  loader, total_steps, steps_per_epoch = None, 0, 1
  if training:
    aug = transforms.Augment(tuple(d.augment.crop_scale), d.augment.flip, d.augment.color_jitter, d.augment.grayscale)
    text_fn = tasks.caption_fn(tok) if config.loss.name == 'contrastive' else None
    loader = pipeline.TrainLoader(train_src, global_batch=config.batch_size, clip=clip, augment=aug,
                                  seed=config.seed, process_index=pid, process_count=pcount,
                                  num_threads=d.num_threads, text_fn=text_fn)
    steps_per_epoch = loader.steps_per_epoch
    total_steps = config.total_steps or int(math.ceil(config.optim.epochs * steps_per_epoch))
  tx = from_config.build_optimizer(config, labels, steps_per_epoch)
  eval_every = max(1, int(round(config.eval.every_epochs * steps_per_epoch)))
  _note('%d steps (%d per epoch), eval every %d', total_steps, steps_per_epoch, eval_every)

  # ####################################################################################################
  # Shardings: rules place parameters; batches split over 'data'; the rest replicated.
  # ####################################################################################################
  repl = NamedSharding(mesh, P())
  trainable_sh = sharding.param_shardings(trainable, config.sharding, mesh)
  frozen_sh = sharding.param_shardings(frozen, config.sharding, mesh)
  abstract_state = jax.eval_shape(lambda t, f: step_lib.init_state(t, f, tx, rng_state), trainable, frozen)
  state_sh = sharding.state_shardings(abstract_state, trainable_sh, mesh)
  _note('sharding %s: %s', config.sharding.preset, sharding.describe(
      {'trainable': trainable_sh, 'optimizer state': state_sh['opt'], 'frozen': frozen_sh}))
  frozen = jax.device_put(frozen, frozen_sh)
  frozen_fp = checkpointing.fingerprint(sharding.to_host(frozen))  # Every process: may gather.
  task = jax.device_put({k: jnp.asarray(v) for k, v in task.items()}, repl)

  # ####################################################################################################
  # State: resume from the latest checkpoint, or initialise.
  # ####################################################################################################
  ckpt = checkpointing.Checkpointer(workdir, keep=config.checkpoint.keep, async_save=config.checkpoint.async_save)
  meta = {'config': json.loads(config.to_json_best_effort()), 'backbone_source': config.model.init or 'random',
          'backbone_fingerprint': backbone_fp, 'history': [], 'split_set': tasks.split_record(train_src)}
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, state_sh)
  restored = ckpt.restore_latest(target)
  if restored is not None:
    start, state, data_state, old_meta = restored
    if old_meta['backbone_fingerprint'] != backbone_fp:
      raise ValueError(f'{workdir}: the checkpoint was trained on backbone {old_meta["backbone_source"]} '
                       f'(fingerprint {old_meta["backbone_fingerprint"][:12]}), but this run loads '
                       f'{meta["backbone_source"]} ({backbone_fp[:12]}); use the same config.model.init or a new workdir')
    meta['history'] = old_meta['history']
    if loader is not None:
      _note(loader.set_state(data_state))
    _note('resumed from step %d', start)
  else:
    start = 0
    state = jax.jit(lambda t, f: step_lib.init_state(t, f, tx, rng_state), out_shardings=state_sh)(trainable, frozen)

  # ####################################################################################################
  # The train step, compiled ahead of time; its memory analysis logged before step 1.
  # ####################################################################################################
  train_step = None
  if loader is not None and start < total_steps:
    batch_abstract = batching.abstract_train_batch(config, arch, mesh, pcount)  # Padded to fit the mesh.
    batch_keys, local_rows = tuple(batch_abstract), batch_abstract['mask'].shape[0] // pcount
    train_step = programs.compile_train_step(config, model, tx, labels, mesh, state_sh, frozen_sh, state, frozen,
                                             batch_abstract, task)
    _note('global batch %d (%d padding rows); train step memory: %s', config.batch_size,
          batch_abstract['mask'].shape[0] - config.batch_size, programs.memory_note(train_step))

  evaluator = evaluate.Evaluator(config, model, mesh, tok, clip, pid, pcount)
  evaluator.linear_probe_classes = train_src.classes if train_src is not None else None

  # ####################################################################################################
  # The loop.
  # ####################################################################################################
  progress = outputs.progress(total_steps, writer)
  t_data = t_step = 0.0
  last_good = ckpt.latest_step()
  losses_seen: dict[str, float] = {}
  for step in range(start, total_steps):
    t0 = time.perf_counter()
    local = next(loader)
    batch = _global(mesh, batching.pad({k: local[k] for k in batch_keys}, local_rows))  # Factor labels: eval only.
    t1 = time.perf_counter()
    state, metrics = train_step(state, frozen, batch, task)
    loss = float(metrics['loss'])
    t2 = time.perf_counter()
    t_data, t_step = t_data + (t1 - t0), t_step + (t2 - t1)
    if not np.isfinite(loss):
      ckpt.wait()
      raise FloatingPointError(
          f'loss is {loss} at step {step + 1}: stopping. The last good checkpoint is step {last_good} in '
          f'{workdir}/checkpoints (nothing was saved after it). Lower config.optim.lr or check the data.')
    done = step + 1
    losses_seen.setdefault('first', loss)
    losses_seen['last'] = loss
    progress(done)
    if done % config.log_every_steps == 0 or done == total_steps:
      n = config.log_every_steps if done % config.log_every_steps == 0 else done % config.log_every_steps or 1
      scalars = {f'train/{k}': float(v) for k, v in metrics.items()}
      scalars.update({'train/lr': float(from_config.learning_rate(config, steps_per_epoch)(done)),
                      'train/step_time': (t_data + t_step) / n,
                      'train/clips_per_second': config.batch_size * n / max(t_data + t_step, 1e-9),
                      'train/input_wait_fraction': t_data / max(t_data + t_step, 1e-9)})
      writer.write_scalars(done, scalars)
      t_data = t_step = 0.0
    if done % eval_every == 0 or done == total_steps:
      params = partition.merge(state['trainable'], frozen)
      record = {'step': done, 'epoch': done / steps_per_epoch}
      if val_src is not None:
        val = evaluator.run(params, val_src, views=(config.eval.val_clips, config.eval.val_crops))
        record['val_top1'] = val['top1']
        writer.write_scalars(done, {'eval/val_top1': val['top1'], 'eval/val_top5': val['top5']})
        ckpt.save_best(done, state, loader.get_state(), dict(meta, history=meta['history'] + [record]), val['top1'])
      meta['history'].append(record)
      ckpt.save(done, state, loader.get_state(), meta)
      last_good = done
  ckpt.wait()
  if loader is not None:
    loader.close()  # Training is over: its prefetch threads would compete with the test evaluation.

  # ####################################################################################################
  # Model selection on validation only, then ONE evaluation of the selected checkpoint per test split.
  # ####################################################################################################
  selection = _select(ckpt, target, state, val_src, total_steps)
  params = partition.merge(selection.pop('state')['trainable'], frozen)
  results = {'selection': selection, 'split_set': meta['split_set'], 'trainable_params': partition.count(trainable),
             'frozen_params': partition.count(frozen), 'frames': clip.num_frames, 'image_size': clip.image_size,
             'views': [config.eval.clips, config.eval.crops], 'backbone': meta['backbone_source'],
             'backbone_fingerprint': backbone_fp, 'method': config.method, 'steps': total_steps,
             'train_loss_this_process_run': losses_seen, 'test': {},
             'frozen_unchanged': checkpointing.fingerprint(sharding.to_host(frozen)) == frozen_fp}
  for split, src in test_srcs.items():
    res = evaluator.run(params, src, views=(config.eval.clips, config.eval.crops), save_to=workdir,
                        name=split.replace(':', '__').replace('/', '_'))
    results['test'][split] = res
    if res['top1'] is not None:
      writer.write_scalars(total_steps, {f'test/{split}/top1': res['top1']})
  if len(config.eval.base_novel) == 2:
    base, novel = (results['test'][s]['top1'] for s in config.eval.base_novel)
    results['base_novel'] = {'base': base, 'novel': novel, 'hm': evaluate.harmonic_mean(base, novel)}
  # Host copies on EVERY process (arrays may span hosts: the gather is collective), then process 0 writes.
  host_trainable = sharding.to_host(partition.split(params, labels)[0])
  host_all = sharding.to_host(params) if config.export_backbone else None
  if pid == 0 and host_all is not None:
    models.save(os.path.join(workdir, 'backbone'), backbone, host_all)
    results['backbone_export'] = os.path.join(workdir, 'backbone')
  if pid == 0:
    outputs.write_outputs(workdir, config, model, host_trainable, results)
  writer.flush()
  ckpt.close()
  return results



def _select(ckpt: checkpointing.Checkpointer, target, state, val_src, total_steps: int) -> dict[str, Any]:
  """The checkpoint the test splits see: best on validation, else the last one; never the test set."""
  if total_steps == 0:
    return {'state': state, 'checkpoint': None, 'why': 'no training steps: the initial parameters'}
  if val_src is not None and ckpt.best_step() is not None:
    step, best_state, _, meta = ckpt.restore_best(target)
    val = next((h['val_top1'] for h in meta['history'] if h['step'] == step), None)
    return {'state': best_state, 'checkpoint': step, 'why': f'best validation top-1 ({val:.2f}) on split '
            f'{val_src.split!r}'}
  return {'state': state, 'checkpoint': total_steps,
          'why': 'no validation split: model selection falls back to the last checkpoint (never the test split)'}
