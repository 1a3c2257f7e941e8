"""Checks that videos decode, with the verdicts a build uses (decode.py): one JSON line per file, then a
summary line.

  python -m msta_jax.tools.probe DIR_OR_FILES... [--workers=N] [--min_frames=8]

Folders are searched recursively for files with a video extension (decode.VIDEO_EXTENSIONS); files named
on the command line are probed whatever their extension. Lines come sorted by path; each holds path,
status (ok / partial / rejected), reason, frames (decoded), duration, fps and detail; the last line is
{"summary": {"files": N, "ok": ..., "partial": {reason: n}, "rejected": {reason: n}}}.
Exit status: 0 when every file is ok, 1 otherwise, 2 on usage errors.
"""
from __future__ import annotations

import functools
import json
import multiprocessing
import os
import sys
from typing import Iterable, Iterator, TextIO

from absl import flags

from msta_jax.data import decode
from msta_jax.tools import cli


def find_videos(inputs: Iterable[str], extensions: tuple[str, ...] = decode.VIDEO_EXTENSIONS) -> list[str]:
  """Files given by name (any extension) plus, under each folder, files with a video extension; sorted."""
  out = []
  for item in inputs:
    if os.path.isdir(item):
      for root, _, files in os.walk(item):
        out += [os.path.join(root, f) for f in files if f.lower().endswith(extensions)]
    else:
      out.append(item)
  return sorted(set(out))


def probe_all(paths: list[str], *, min_frames: int = decode.MIN_FRAMES, workers: int = 0,
              timeout_s: float = decode.RESULT_TIMEOUT_S) -> Iterator[decode.Verdict]:
  """Verdicts of `paths` in their order, decoded by `workers` spawned processes (0: one per core)."""
  fn = functools.partial(decode.probe, min_frames=min_frames)
  workers = min(workers or os.cpu_count() or 1, len(paths))
  if workers <= 1:
    yield from map(fn, paths)
    return
  order, done, head = {p: i for i, p in enumerate(paths)}, {}, 0
  with multiprocessing.get_context('spawn').Pool(workers) as pool:  # Exiting terminates the workers.
    for v in decode.imap_bounded(pool, fn, paths, limit=4 * workers, timeout_s=timeout_s,
                                 failed=lambda p, why: decode.Verdict(p, decode.REJECTED, 'error',
                                                                      detail=why)):
      done[order[v.path]] = v  # Verdicts are small: hold early ones until their turn.
      while head in done:
        yield done.pop(head)
        head += 1


def run(inputs: list[str], out: TextIO, *, min_frames: int = decode.MIN_FRAMES, workers: int = 0) -> dict:
  """Writes the JSON lines for `inputs` (files and folders) to `out`; returns the summary."""
  paths = find_videos(inputs)
  verdicts = []
  for v in probe_all(paths, min_frames=min_frames, workers=workers):
    verdicts.append(v)
    out.write(json.dumps(v.to_json()) + '\n')
    out.flush()
  counts = decode.summarize(verdicts)
  summary = {'files': len(verdicts), 'ok': sum(counts[decode.OK].values()),
             'partial': counts[decode.PARTIAL], 'rejected': counts[decode.REJECTED]}
  out.write(json.dumps({'summary': summary}) + '\n')
  return summary


def main(argv: list[str]) -> int:
  fv = flags.FlagValues()  # Private: re-imported by spawned workers and next to other CLIs in tests.
  flags.DEFINE_integer('workers', 0, 'Decoding processes (0: one per core).', flag_values=fv)
  flags.DEFINE_integer('min_frames', decode.MIN_FRAMES, 'Fewer decoded frames rejects a video '
                       '(too_short), as in a build.', flag_values=fv)
  if cli.print_help_if_asked(argv, __doc__, fv):
    return 0
  try:
    inputs = fv(argv)[1:]
  except flags.Error as e:
    print(f'usage error: {e}\n{__doc__}', file=sys.stderr)
    return 2
  if not inputs:
    print(f'usage error: name at least one folder or video file\n{__doc__}', file=sys.stderr)
    return 2
  absent = [p for p in inputs if not os.path.exists(p)]
  if absent:
    print(f'usage error: no such file or folder: {", ".join(absent)}', file=sys.stderr)
    return 2
  summary = run(inputs, sys.stdout, min_frames=fv.min_frames, workers=fv.workers)
  if summary['files'] == 0:
    print(f'no video files (extensions {", ".join(decode.VIDEO_EXTENSIONS)}) under {", ".join(inputs)}',
          file=sys.stderr)
    return 1
  return 0 if summary['ok'] == summary['files'] else 1


if __name__ == '__main__':
  cli.run(main)
