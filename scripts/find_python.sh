# Sourced by setup.sh and airflow_venv.sh: sets PYTHON to a Python 3.11 (or keeps $PYTHON),
# else stops with one line. Needs die() from the caller.
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON="$(command -v "$candidate")"; break
    fi
  done
fi
[ -n "$PYTHON" ] || die "Python 3.11 is required (python3.11 not found): install it, or set PYTHON=/path/to/python3.11"
