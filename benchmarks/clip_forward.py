"""CLIP embedding throughput: our Flax CLIP against HF transformers' PyTorch CLIP, same weights, one run.

    USE_TF=0 .venv/bin/python benchmarks/clip_forward.py                  # reference settings (below)
    USE_TF=0 .venv/bin/python benchmarks/clip_forward.py --model=tiny_clip --images=4 --texts=8   # smoke

Both models hold the same random weights: a random HF `CLIPModel` with the architecture of
`models.CONFIGS[--model]` is saved with `save_pretrained` and read back with `models.load`, so the run
also checks that both produce the same embeddings. Reference settings (fixed, issue 12): PyTorch fp32
under `torch.inference_mode()` with its default thread count and attention implementation; our model
fp32, jitted the way evaluation and predict compile it (msta_jax.compilation's forward options, no
XLA_FLAGS); 8 images of 224x224 and 64 texts of 77 tokens, 2 warm-up calls, then the median of 5
timed calls. Every round times PyTorch and ours back to back (alternating which goes
first), so both see the same machine load. The load average is reported because a busy shared machine
slows PyTorch's OpenMP threads more than XLA's: a ratio is only the 2-core figure when the machine
was otherwise idle (load before ~0). The CPU seconds each call used (all threads) are shown too.

Prints a table, then one JSON line whose `ratio_vs_pytorch` is our image-embedding throughput over
PyTorch's (the larger cost; >1: ours is faster), with `text_ratio_vs_pytorch` beside it.
"""
from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('USE_TF', '0')  # transformers must not import TensorFlow.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from msta_jax import compilation, models  # noqa: E402
from msta_jax.models import attention as attention_lib  # noqa: E402

from common import cores, cpu_name, hf_clip, projected  # noqa: E402  (benchmarks/common.py)

_MODEL = flags.DEFINE_string('model', 'clip_b16', 'Architecture from models.CONFIGS (frame_average).')
_IMAGES = flags.DEFINE_integer('images', 8, 'Images per call.')
_TEXTS = flags.DEFINE_integer('texts', 64, 'Texts per call (context length from the config).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls per model and modality.')
_ITERS = flags.DEFINE_integer('iters', 5, 'Timed calls per model and modality; the median is reported.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the random weights and inputs.')
_BEFORE = flags.DEFINE_bool(
    'before', False, 'Also time our model as it was before issue 12 (ours_before: attention by '
    'jax.nn.dot_product_attention\'s XLA path, the last vision block on every token, XLA\'s default '
    'compiler options) and today\'s with the last vision block on every token (ours_all_tokens: what '
    'computing token 0 alone there saves).')


def token_ids(n: int, context: int, vocab: int, eot: int, rng: np.random.Generator) -> np.ndarray:
  """Tokenizer-shaped ids: start token, random words, EOT at a random length, zero padding."""
  ids = np.zeros((n, context), np.int32)
  for i in range(n):
    length = int(rng.integers(3, context + 1))
    ids[i, 0] = eot - 1  # <start_of_text>
    ids[i, 1:length - 1] = rng.integers(1, eot - 1, length - 2)
    ids[i, length - 1] = eot
  return ids


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
  return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def timed(fn) -> tuple[float, float]:
  """(wall seconds, CPU seconds of this process, all threads) of one call."""
  cpu, start = time.process_time(), time.perf_counter()
  fn()
  return time.perf_counter() - start, time.process_time() - cpu


def main(argv):
  del argv
  import torch
  import transformers
  cfg = models.get_config(_MODEL.value)
  if cfg.video_mode != 'frame_average':
    raise app.UsageError(f'{_MODEL.value}: image embeddings need a frame_average (CLIP) config')
  v, t = cfg.vision, cfg.text

  # Same weights: HF random init -> save_pretrained -> models.load (the converter under test too).
  hf = hf_clip(cfg, _SEED.value)
  with tempfile.TemporaryDirectory() as tmp:
    hf.save_pretrained(tmp)
    model, params = models.load(tmp)
  params = jax.device_put(params)

  rng = np.random.default_rng(_SEED.value)
  images = rng.standard_normal((_IMAGES.value, v.image_size, v.image_size, 3), dtype=np.float32)
  ids = token_ids(_TEXTS.value, t.context_length, t.vocab_size, t.eot_id, rng)
  images_j, ids_j = jax.device_put(images), jax.device_put(ids)
  images_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
  ids_t = torch.from_numpy(ids).long()

  def image_all_tokens(module, images):  # encode_image with the last block on every token.
    v = module.visual
    x = v.patchify(images)
    x = jnp.concatenate([v.cls_token(x.shape[0]), x], axis=1)
    return v.head(v.transformer(v.ln_pre(x)))

  def compiled(method, x, attention=None, options=compilation.forward_options()):
    """Our jitted encoder compiled now, with the package's forward-pass XLA options (as evaluation and
    predict compile it); `attention` swaps models.attention.attention while tracing."""
    fn = jax.jit(lambda p, x: model.apply({'params': p}, x, method=method))
    saved = attention_lib.attention
    attention_lib.attention = attention or saved
    try:
      return fn.lower(params, x).compile(compiler_options=options)
    finally:
      attention_lib.attention = saved

  def run(fn, x):
    return lambda: np.asarray(fn(params, x).block_until_ready())

  def torch_image():
    with torch.inference_mode():
      return projected(hf.get_image_features(pixel_values=images_t)).numpy()

  def torch_text():
    with torch.inference_mode():
      return projected(hf.get_text_features(input_ids=ids_t)).numpy()

  impls = {
      'image': {'pytorch': torch_image, 'ours': run(compiled(model.encode_image, images_j), images_j)},
      'text': {'pytorch': torch_text, 'ours': run(compiled(model.encode_text, ids_j), ids_j)},
  }
  if _BEFORE.value:
    def xla_attention(q, k, v, *, causal):
      return jax.nn.dot_product_attention(q, k, v, is_causal=causal, implementation='xla')
    impls['image']['ours_before'] = run(compiled(image_all_tokens, images_j, xla_attention, None), images_j)
    impls['image']['ours_all_tokens'] = run(compiled(image_all_tokens, images_j), images_j)  # Today's, less the skip.
    impls['text']['ours_before'] = run(compiled(model.encode_text, ids_j, xla_attention, None), ids_j)

  errors = {}
  for modality, fns in impls.items():
    ref = fns['pytorch']()
    errors[modality] = max(rel_err(fn(), ref) for who, fn in fns.items() if who != 'pytorch')
  times = {(m, who): [] for m, fns in impls.items() for who in fns}
  cpu_times = {k: [] for k in times}
  load_before = os.getloadavg()
  for i in range(_WARMUP.value + _ITERS.value):
    for modality, fns in impls.items():
      order = list(fns.items())
      order = order[i % len(order):] + order[:i % len(order)]  # Rotate who goes first each round.
      for who, fn in order:
        dt, cpu = timed(fn)
        if i >= _WARMUP.value:
          times[(modality, who)].append(dt)
          cpu_times[(modality, who)].append(cpu)
  load_after = os.getloadavg()

  med = {k: statistics.median(v) for k, v in times.items()}
  cpu_med = {k: statistics.median(v) for k, v in cpu_times.items()}
  batch = {'image': _IMAGES.value, 'text': _TEXTS.value}
  print(f'{"modality":9s} {"impl":15s} {"batch":>5s} {"median s":>9s} {"per s":>7s} {"x PyTorch":>9s} '
        f'{"CPU s":>6s} {"x PyTorch":>9s}  all timed calls (s)')
  for (modality, who), m in med.items():
    c = cpu_med[(modality, who)]
    print(f'{modality:9s} {who:15s} {batch[modality]:5d} {m:9.4f} {batch[modality] / m:7.2f} '
          f'{med[(modality, "pytorch")] / m:9.3f} {c:6.2f} {cpu_med[(modality, "pytorch")] / max(c, 1e-9):9.3f}  '
          f'{" ".join(f"{x:.3f}" for x in times[(modality, who)])}')
  ratio = {m: med[(m, 'pytorch')] / med[(m, 'ours')] for m in impls}
  for m in impls:
    print(f'{m}: ours / PyTorch throughput = {ratio[m]:.3f}  (max relative error {errors[m]:.1e})')
  result = {
      'benchmark': 'clip_forward', 'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'model': _MODEL.value, 'cpu': cpu_name(), 'cores': cores(),
      'torch_threads': torch.get_num_threads(), 'torch_attention': hf.config._attn_implementation,
      'jax': jax.__version__, 'torch': torch.__version__, 'transformers': transformers.__version__,
      'backend': jax.default_backend(), 'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'compiler_options': compilation.forward_options(),
      'images': _IMAGES.value, 'image_size': v.image_size, 'texts': _TEXTS.value,
      'context_length': t.context_length, 'warmup': _WARMUP.value, 'iters': _ITERS.value,
      'loadavg_1min_before': round(load_before[0], 2), 'loadavg_1min_after': round(load_after[0], 2),
      'image_s_pytorch': med[('image', 'pytorch')], 'image_s_ours': med[('image', 'ours')],
      'images_per_s_pytorch': _IMAGES.value / med[('image', 'pytorch')],
      'images_per_s_ours': _IMAGES.value / med[('image', 'ours')],
      'text_s_pytorch': med[('text', 'pytorch')], 'text_s_ours': med[('text', 'ours')],
      'texts_per_s_pytorch': _TEXTS.value / med[('text', 'pytorch')],
      'texts_per_s_ours': _TEXTS.value / med[('text', 'ours')],
      'max_rel_err_image': errors['image'], 'max_rel_err_text': errors['text'],
      'image_cpu_s_pytorch': cpu_med[('image', 'pytorch')], 'image_cpu_s_ours': cpu_med[('image', 'ours')],
      'text_cpu_s_pytorch': cpu_med[('text', 'pytorch')], 'text_cpu_s_ours': cpu_med[('text', 'ours')],
      'ratio_vs_pytorch': ratio['image'], 'text_ratio_vs_pytorch': ratio['text'],
  }
  if _BEFORE.value:
    for m in impls:
      result[f'{m}_s_ours_before'] = med[(m, 'ours_before')]
      result[f'{m}_speedup_over_before'] = med[(m, 'ours_before')] / med[(m, 'ours')]
    result['image_s_ours_all_tokens'] = med[('image', 'ours_all_tokens')]
    result['ratio_vs_pytorch_all_tokens'] = med[('image', 'pytorch')] / med[('image', 'ours_all_tokens')]
  print(json.dumps(result))


if __name__ == '__main__':
  app.run(main)
