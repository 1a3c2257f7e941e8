"""The one trainer for every protocol and method: `train_and_evaluate(config, workdir)`.

Protocols and methods differ in config and data (which splits, which class lists, what trains, which
loss); the loop never branches on a protocol, and on one method only: a linear probe
(`method == 'linear_probe'`) gets class weights of its own, initialised from the class prompts, added
to the parameters. Read top to bottom: setup, data, model, task inputs, shardings, state (fresh or
resumed), the compiled step, the loop, then model selection on the validation split and ONE
evaluation of the selected checkpoint on each test split.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from msta_jax import files
from msta_jax import models
from msta_jax import paths
from msta_jax.data import bad_records, counts, pipeline, prepare, transforms
from msta_jax.train import batching
from msta_jax.train import checkpointing
from msta_jax.train import device_metrics
from msta_jax.train import evaluate
from msta_jax.train import faults
from msta_jax.train import feed as feed_lib
from msta_jax.train import from_config
from msta_jax.train import losses
from msta_jax.train import memory_check
from msta_jax.train import nonfinite
from msta_jax.train import outputs
from msta_jax.train import partition
from msta_jax.train import preemption
from msta_jax.train import programs
from msta_jax.train import run_identity
from msta_jax.train import sharding
from msta_jax.train import step as step_lib
from msta_jax.train import tasks
from msta_jax.train import test_selection
from msta_jax.train import workdir_lock


def _note(msg: str, *args) -> None:
  logging.info('NOTE: ' + msg, *args)


def _global(mesh, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Process-local numpy batch -> global arrays sharded along 'data' on axis 0."""
  sh = NamedSharding(mesh, P('data'))
  return {k: jax.make_array_from_process_local_data(sh, np.asarray(v)) for k, v in local.items()}


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  """One run; a second run on the same workdir is refused while this one holds `DIR/run.lock`."""
  workdir = paths.local_or_url(workdir)  # A file:// URL is its local path; gs:// stays a URL (msta_jax.paths).
  lock = workdir_lock.WorkdirLock(workdir)
  try:
    if jax.process_index() == 0:
      paths.resolve(workdir).mkdir(parents=True, exist_ok=True)
      lock.acquire()
    return _train_and_evaluate(config, workdir)
  finally:
    lock.release()


def _train_and_evaluate(config, workdir: str) -> dict[str, Any]:
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
    files.write_atomic(os.path.join(workdir, 'config.json'), config.to_json_best_effort(sort_keys=True, indent=1))

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
  # Counts for results.json; refuses a partial dataset (unless data.allow_partial) before any model is built.
  data_report = counts.dataset_report(train_src, val_src, test_srcs, allow_partial=d.allow_partial)
  training = train_src is not None and config.optim.epochs > 0
  if training:
    pipeline.check_batch(train_src, config.batch_size)

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
    aug = transforms.Augment(tuple(d.augment.crop_scale), d.augment.flip, d.augment.color_jitter, d.augment.grayscale,
                             d.augment.uint8_colour)
    text_fn = tasks.caption_fn(tok) if config.loss.name == 'contrastive' else None
    loader = pipeline.TrainLoader(train_src, global_batch=config.batch_size, clip=clip, augment=aug,
                                  seed=config.seed, process_index=pid, process_count=pcount,
                                  num_threads=d.num_threads, num_workers=d.num_workers, text_fn=text_fn,
                                  bad_records=d.bad_records, decoded_cache_bytes=int(d.decoded_cache_mb * 2**20))
    steps_per_epoch = loader.steps_per_epoch
    total_steps = config.total_steps or int(math.ceil(config.optim.epochs * steps_per_epoch))
  tx = from_config.build_optimizer(config, labels, steps_per_epoch)
  eval_every = max(1, int(round(config.eval.every_epochs * steps_per_epoch)))
  _note('%d steps (%d per epoch), eval every %d', total_steps, steps_per_epoch, eval_every)
  test_steps = test_selection.eval_steps(config.eval.get('test_every_epochs', 0.0), steps_per_epoch, total_steps)

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
          'backbone_fingerprint': backbone_fp, 'history': [], 'split_set': tasks.split_record(train_src),
          'dataset_identity': run_identity.dataset_identity(train_src, val_src), 'nonfinite_skipped': [],
          'test_evals': []}
  target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, state_sh)
  restored = ckpt.restore_latest(target)
  if restored is not None:
    start, state, data_state, old_meta = restored
    if old_meta['backbone_fingerprint'] != backbone_fp:
      raise ValueError(f'{workdir}: the checkpoint was trained on backbone {old_meta["backbone_source"]} '
                       f'(fingerprint {old_meta["backbone_fingerprint"][:12]}), but this run loads '
                       f'{meta["backbone_source"]} ({backbone_fp[:12]}); use the same config.model.init or a new workdir')
    run_identity.check_resume(workdir, start, old_meta, meta, config.checkpoint.resume_force)
    meta['history'], meta['nonfinite_skipped'] = old_meta['history'], old_meta.get('nonfinite_skipped', [])
    meta['test_evals'] = old_meta.get('test_evals', [])
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
    batch_abstract = feed_lib.wire_batch(batch_abstract, loader.video_dtype)  # Pixels normalised in the step.
    batch_keys, local_rows = tuple(batch_abstract), batch_abstract['mask'].shape[0] // pcount
    train_step = programs.compile_train_step(config, model, tx, labels, mesh, state_sh, frozen_sh, state, frozen,
                                             batch_abstract, task, clip)
    _note(memory_check.check(train_step, config.memory_limit_bytes, config.batch_size))
    _note('global batch %d (%d padding rows); train step memory: %s', config.batch_size,
          batch_abstract['mask'].shape[0] - config.batch_size, programs.memory_note(train_step))

  evaluator = evaluate.Evaluator(config, model, mesh, tok, clip, pid, pcount)
  evaluator.linear_probe_classes = train_src.classes if train_src is not None else None

  # ####################################################################################################
  # The loop. Between logging points nothing waits on the device: batches are prefetched to it (the
  # feed), metrics stay on it, a non-finite loss is recorded on it and read before logs and saves.
  # ####################################################################################################
  progress = outputs.progress(total_steps, writer)
  t_data, t_window = 0.0, time.perf_counter()
  last_good = ckpt.latest_step()
  losses_seen: dict[str, float] = {}
  periodic = checkpointing.Periodic(config.checkpoint.every_steps, config.checkpoint.every_minutes, pcount)
  preempt = preemption.Watch(pcount)
  skipper = nonfinite.Skipper(config.optim.skip_nonfinite, meta['nonfinite_skipped'])
  feed = None
  if loader is not None:
    fed = itertools.count(start + 1)  # The step each batch is fed for (the feed runs ahead of the step).

    def to_device(local):
      local = faults.batch(next(fed), local)
      return _global(mesh, batching.pad({k: local[k] for k in batch_keys}, local_rows))  # Factor labels: eval only.
    feed = feed_lib.DeviceFeed(loader, to_device)
  watch, first_loss = device_metrics.NonFiniteWatch(), None

  def not_finite(step: int, loss) -> FloatingPointError:
    ckpt.wait()
    return FloatingPointError(
        f'loss is {loss} at step {step}: stopping. The last good checkpoint is step {last_good} in '
        f'{workdir}/checkpoints (nothing was saved after it). Lower config.optim.lr or check the data.')

  def stop_if_not_finite():
    bad = watch.first_bad()
    if bad is not None:
      raise FloatingPointError(f'{not_finite(bad[0], bad[1]["loss"])} Metrics of step {bad[0]}: {bad[1]}')

  def save(step: int) -> None:
    """Checkpoints `step` with the data position after its batch; a NaN state is never saved."""
    nonlocal last_good
    stop_if_not_finite()
    ckpt.save(step, state, feed.get_state(), meta)
    last_good = step
    periodic.saved()

  def skipped(step: int, metrics) -> bool:
    """optim.skip_nonfinite > 0: this step's metrics are fetched (explicitly: one host sync per step,
    the price of the option) to decide whether the guarded step was skipped."""
    fetched = jax.device_get(metrics)
    if np.isfinite(fetched['loss']):
      losses_seen['last'] = float(fetched['loss'])
      return False
    if skipper.skip(step, fetched):
      return True
    raise not_finite(step, fetched['loss'])

  for step in range(start, total_steps):
    with jax.transfer_guard(config.transfer_guard):  # 'disallow' proves no implicit transfer happens here.
      t0 = time.perf_counter()
      batch = next(feed)
      t_data += time.perf_counter() - t0
      state, metrics = train_step(state, frozen, batch, task)
      done = step + 1
      if not (config.optim.skip_nonfinite and skipped(done, metrics)):
        watch.update(metrics, state['step'])
        first_loss = metrics['loss'] if first_loss is None else first_loss
      progress(done)
    faults.hit('after_step', done)
    if done % config.log_every_steps == 0 or done == total_steps:
      n = config.log_every_steps if done % config.log_every_steps == 0 else done % config.log_every_steps or 1
      stop_if_not_finite()
      fetched = jax.device_get(metrics)  # Waits for the window's steps: the times below are real.
      elapsed = time.perf_counter() - t_window
      if first_loss is not None:  # None while every step so far was skipped (optim.skip_nonfinite).
        losses_seen.setdefault('first', float(jax.device_get(first_loss)))
      if np.isfinite(fetched['loss']):  # A skipped step's loss is not the run's (skipped() keeps the last good).
        losses_seen['last'] = float(fetched['loss'])
      scalars = {f'train/{k}': float(v) for k, v in fetched.items()}
      scalars.update({'train/lr': float(from_config.learning_rate(config, steps_per_epoch)(done)),
                      'train/step_time': elapsed / n,
                      'train/clips_per_second': config.batch_size * n / max(elapsed, 1e-9),
                      'train/input_wait_fraction': t_data / max(elapsed, 1e-9)})
      writer.write_scalars(done, scalars)
      t_data, t_window = 0.0, time.perf_counter()
    if done in test_steps:  # The authors' test-set evaluations (recipe authors), reported apart.
      meta['test_evals'] += test_selection.evaluate_tests(
          evaluator, partition.merge(state['trainable'], frozen), test_srcs, (config.eval.clips, config.eval.crops),
          epoch=test_steps[done], step=done)
    if done % eval_every == 0 or done == total_steps:
      stop_if_not_finite()  # Before evaluating, as before saving.
      params = partition.merge(state['trainable'], frozen)
      record = {'step': done, 'epoch': done / steps_per_epoch}
      if val_src is not None:
        val = evaluator.run(params, val_src, views=(config.eval.val_clips, config.eval.val_crops))
        faults.hit('during_eval', done)
        record['val_top1'] = val['top1']
        writer.write_scalars(done, {'eval/val_top1': val['top1'], 'eval/val_top5': val['top5']})
        ckpt.save_best(done, state, feed.get_state(), dict(meta, history=meta['history'] + [record]), val['top1'])
      meta['history'].append(record)
      save(done)
      t_data, t_window = 0.0, time.perf_counter()  # Evaluation time is not step time.
    stop = preempt.reached(done)
    if last_good != done and (stop or periodic.due(done)):  # Between evaluations; the same on every process.
      save(done)
    if stop:
      ckpt.wait()
      loader.close()
      raise preempt.stop(done)
  preempt.close()
  ckpt.wait()
  if loader is not None:
    loader.close()  # Training is over: its prefetch threads would compete with the test evaluation.
    if loader.cache is not None:  # How much of the split the budget held (data.decoded_cache_mb).
      _note('decoded-frame cache: %s', loader.cache.describe())

  # ####################################################################################################
  # Model selection on validation only, then ONE evaluation of the selected checkpoint per test split.
  # ####################################################################################################
  selection = _select(ckpt, target, state, val_src, total_steps)
  params = partition.merge(selection.pop('state')['trainable'], frozen)
  results = {'selection': selection, 'split_set': meta['split_set'], 'trainable_params': partition.count(trainable),
             'frozen_params': partition.count(frozen), 'frames': clip.num_frames, 'image_size': clip.image_size,
             'views': [config.eval.clips, config.eval.crops], 'backbone': meta['backbone_source'],
             'backbone_fingerprint': backbone_fp, 'method': config.method, 'steps': total_steps,
             'recipe': config.get('recipe', 'msta_jax'),
             'train_loss_this_process_run': losses_seen, 'test': {},
             'frozen_unchanged': checkpointing.fingerprint(sharding.to_host(frozen)) == frozen_fp, 'data': data_report,
             'nonfinite_skipped': meta['nonfinite_skipped'],
             'bad_records': bad_records.report(train_src, d.bad_records, feed.get_state() if feed else None)}
  for split, src in test_srcs.items():
    res = evaluator.run(params, src, views=(config.eval.clips, config.eval.crops), save_to=workdir,
                        name=split.replace(':', '__').replace('/', '_'))
    results['test'][split] = res
    faults.hit('during_test')
    if res['top1'] is not None:
      writer.write_scalars(total_steps, {f'test/{split}/top1': res['top1']})
  if meta['test_evals']:
    results['test_set_selection'] = test_selection.summary(meta['test_evals'])
  if len(config.eval.base_novel) == 2:
    base, novel = (results['test'][s]['top1'] for s in config.eval.base_novel)
    results['base_novel'] = {'base': base, 'novel': novel, 'hm': evaluate.harmonic_mean(base, novel)}
  # Host copies on EVERY process (arrays may span hosts: the gather is collective), then process 0 writes.
  host_trainable = sharding.to_host(partition.split(params, labels)[0])
  host_all = sharding.to_host(params) if config.export_backbone else None
  if pid == 0 and host_all is not None:
    outputs.export_backbone(os.path.join(workdir, 'backbone'), backbone, host_all, backbone_params)
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
