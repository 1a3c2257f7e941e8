#!/usr/bin/env bash
# Runs the test suite: creates .venv if missing (else reuses it), installs msta_jax[test] at the versions
# of the lock for its Python (launch/setup_venv.sh), runs pytest with 8 fake CPU devices. Extra arguments
# go to pytest (e.g. `bash launch/test.sh -k tokenizer`). TEST_VENV=DIR runs in a venv installed
# elsewhere instead (launch/test_newest.sh does, for the newest stack).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_VENV:-}" ]; then
  bash launch/setup_venv.sh test
fi
export USE_TF=0                     # transformers must not import TensorFlow.
export TF_CPP_MIN_LOG_LEVEL=2
export XLA_FLAGS="${XLA_FLAGS:-} --xla_force_host_platform_device_count=8"
export JAX_PLATFORMS=cpu
exec "${TEST_VENV:-.venv}/bin/python" -m pytest -q -p no:cacheprovider "$@"
