"""Commands that need their own fake device count (fixed when JAX starts), run as subprocesses two at a
time: XLA:CPU compiles on one thread, and CI has 2 cores."""
import concurrent.futures
import contextlib
import os
import subprocess
from collections.abc import Iterator


@contextlib.contextmanager
def started(commands: dict, devices: int | dict, timeout: float = 900) -> Iterator[dict]:
  """{key: future of the finished subprocess.CompletedProcess} for {key: argv}, each on `devices` fake CPU
  devices (one count, or {key: count}). Leaving the block waits for every command."""
  def run(key) -> subprocess.CompletedProcess:
    n = devices[key] if isinstance(devices, dict) else devices
    env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={n}')
    return subprocess.run(commands[key], capture_output=True, text=True, env=env, timeout=timeout)
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    yield {key: pool.submit(run, key) for key in commands}
