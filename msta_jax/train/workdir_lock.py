"""One run per workdir: `DIR/run.lock` names the host, pid and start time of the run that holds it.

Process 0 takes it (the other processes of a multi-process run share the workdir by design). A
second run refuses to start, naming the holder. A lock left by a process that is gone (same host; its
pid is not running, or runs a different process, told apart by the kernel's start time of the pid)
is taken over with a warning. A lock from another host cannot be checked and is never taken over:
the message says to delete the file once that run is known to be dead.

The file is created with O_CREAT | O_EXCL, atomic on local disks and NFSv3+. Object stores (gs://)
have no create-if-absent through file APIs: there the lock would be a read-then-write, two runs
starting within one round trip could both win, so a `://` workdir gets no lock and a warning.
"""
from __future__ import annotations

import json
import os
import socket
import time

from absl import logging

NAME = 'run.lock'


def _start_ticks(pid: int) -> int | None:
  """The kernel's start time of `pid` (clock ticks since boot), None where /proc has none."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return int(f.read().rsplit(')', 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def _alive(pid: int, ticks: int | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # Someone else's live process.
  return ticks is None or _start_ticks(pid) in (None, ticks)


class WorkdirLock:
  """`acquire()` at the start of a run, `release()` when it ends (also after a preemption)."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, NAME)
    self.held = False

  def _create(self, record: dict) -> bool:
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, 'w') as f:
      json.dump(record, f)
    return True

  def acquire(self) -> None:
    if '://' in self.path:
      logging.warning('%s: no workdir lock on object stores (no atomic create-if-absent); run one job per workdir',
                      self.path)
      return
    me = {'host': socket.gethostname(), 'pid': os.getpid(), 'start_ticks': _start_ticks(os.getpid()),
          'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    for _ in range(2):
      if self._create(me):
        self.held = True
        return
      try:
        with open(self.path) as f:
          other = json.load(f)
      except (OSError, ValueError):
        other = None  # Unreadable or empty: its writer died between create and write.
      if other is not None and (other.get('host') != me['host'] or _alive(other['pid'], other.get('start_ticks'))):
        where = 'this host' if other.get('host') == me['host'] else f'host {other.get("host")}'
        raise RuntimeError(
            f'{self.path}: another run holds this workdir (pid {other.get("pid")} on {where}, started '
            f'{other.get("started")}). Wait for it, use another --workdir, or delete {self.path} if that run is dead.')
      logging.warning('%s: taking over a stale lock (%s): its process is gone', self.path, other)
      os.remove(self.path)
    raise RuntimeError(f'{self.path}: could not take the lock (another run took it at the same moment)')

  def release(self) -> None:
    if self.held:
      self.held = False
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
