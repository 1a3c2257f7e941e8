# Sourced by the launchers (after they cd to the repository root).

# require_workdir HINT ARGS...: sets $workdir from the --workdir=DIR among the program's flags ARGS, or
# exits 2 asking for it (HINT says where DIR must live, e.g. " (a path every worker shares)").
require_workdir() {
  local hint=$1 a
  shift
  workdir=""
  for a in "$@"; do case "$a" in --workdir=*) workdir="${a#*=}";; esac; done
  [ -n "$workdir" ] || { echo "pass --workdir=DIR after --$hint" >&2; exit 2; }
}
