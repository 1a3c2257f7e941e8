#!/usr/bin/env bash
# Creates a venv if missing (else reuses it) and installs msta_jax with the given extras at the exact
# versions of a lock file, reinstalling only when pyproject.toml, the lock or the arguments changed.
#
#   bash launch/setup_venv.sh [EXTRAS [REQUIREMENT...]]    e.g. `test`, or `'' pytest`
#
# VENV: the venv (default .venv). PYTHON: the interpreter that creates it (default python3).
# LOCK: the lock (default requirements/lock-pyXY.txt for the venv's Python X.Y). Every package pip
# installs must be pinned there, so a lock that misses one fails here instead of floating.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${VENV:-.venv}"
extras="${1:-}"
shift $(( $# > 0 ? 1 : 0 ))
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
lock="${LOCK:-requirements/lock-py$("$py" -c 'import sys; print("%d%d" % sys.version_info[:2])').txt}"
if [ ! -f "$lock" ]; then
  echo "no lock $lock for $("$py" --version) in $venv; locks: $(ls requirements/lock-*.txt | tr '\n' ' ')" >&2
  echo "(make $venv with a Python that has one, e.g. PYTHON=python3.11, or name one with LOCK=...)" >&2
  exit 2
fi
stamp="$venv/.msta_jax_installed"
hash="$(cat pyproject.toml "$lock" | sha256sum | cut -d' ' -f1)"
want="$hash [${extras}] $*"
# A plain install (no extras, nothing added) is already there after any install of the same pyproject and
# lock: `bash launch/demo.sh` after `bash launch/test.sh` must not spend a minute in pip.
if [ -z "$extras" ] && [ $# -eq 0 ] && [ -f "$stamp" ] && grep -q "^$hash " "$stamp"; then
  exit 0
fi
if [ ! -f "$stamp" ] || ! grep -qxF "$want" "$stamp"; then
  target=.
  [ -n "$extras" ] && target=".[${extras}]"
  report="$venv/.msta_jax_pip_report.json"
  "$py" -m pip install -q --report "$report" -c "$lock" -e "$target" "$@"
  "$py" - "$report" "$lock" <<'EOF'
import json, re, sys
norm = lambda name: re.sub(r'[-_.]+', '-', name).lower()
locked = {}
for line in open(sys.argv[2]):
  if '==' in line and not line.startswith('#'):
    name, version = line.split('#')[0].strip().split('==')
    locked[norm(name)] = version
floating = [f"{m['name']}=={m['version']}" for m in (i['metadata'] for i in json.load(open(sys.argv[1]))['install'])
            if norm(m['name']) != 'msta-jax' and locked.get(norm(m['name'])) != m['version']]
if floating:
  sys.exit(f'installed but not pinned in {sys.argv[2]}: {" ".join(floating)} (add them to the lock)')
EOF
  echo "$want" > "$stamp"
fi
