#!/usr/bin/env bash
# The newest stack we test: Python 3.12 with the newest jax, flax, optax, orbax-checkpoint, chex,
# transformers 5.x, TensorFlow/TFDS, grain, array_record and PyAV, at the exact versions of
# requirements/lock-py312-newest.txt. Creates .venv-newest if missing (else reuses it) and runs the
# suite there with launch/test.sh.
#
#   bash launch/test_newest.sh [--relock] [PYTEST_ARGS...]
#
# Without PYTEST_ARGS it runs everything but the tests marked slow (the full-size and multi-process ones,
# which the main suite runs): models, train step, data pipeline, trainer end to end, tools, in ~10 min
# on 2 cores. Tests that need torch skip: there is no CPU build of torch 2.13.0 for Python 3.12 here.
# --relock re-resolves the newest versions pyproject.toml admits into a fresh .venv-newest and rewrites
# the lock from it (commit the lock with any fixes). PYTHON: a Python 3.12 (default: pyenv's 3.12.x
# where pyenv is installed, else python3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-newest
lock=requirements/lock-py312-newest.txt
py="${PYTHON:-python3.12}"
if [ -z "${PYTHON:-}" ] && command -v pyenv >/dev/null; then  # pyenv's shims need the version named.
  v="$(pyenv versions --bare | grep -m1 -x '3\.12\.[0-9]*' || true)"
  [ -n "$v" ] && py="$(pyenv prefix "$v")/bin/python3.12"
fi
if ! "$py" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  echo "needs a Python 3.12 (not found as $py): install one, or name it with PYTHON=..." >&2
  exit 2
fi
if [ "${1:-}" = --relock ]; then
  shift
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -e . pytest
  { echo "# The newest stack msta_jax is tested with (Python 3.12): what pyproject.toml's ranges resolved to"
    echo "# with no lock on $(date -u +%F), written by \`bash launch/test_newest.sh --relock\`."
    "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -v '^pip=='
  } > "$lock"
fi
VENV="$venv" LOCK="$lock" PYTHON="$py" bash launch/setup_venv.sh "" pytest
USE_TF=0 "$venv/bin/python" -c 'import jax, flax, transformers, numpy, sys
print("newest stack: Python %s, jax %s, flax %s, transformers %s, numpy %s" % (
    sys.version.split()[0], jax.__version__, flax.__version__, transformers.__version__, numpy.__version__))'
[ $# -gt 0 ] || set -- -m 'not slow'
TEST_VENV="$venv" exec bash launch/test.sh "$@"
