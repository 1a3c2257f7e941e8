#!/usr/bin/env bash
# Creates .venv if missing (else reuses it) and installs msta_jax with the given extras, reinstalling
# only when pyproject.toml changed. Usage: source launch/setup_venv.sh [EXTRAS]   (e.g. "test")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.msta_jax_installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[${extras}]"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  echo "$want" >> "$stamp"
fi
