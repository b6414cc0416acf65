#!/usr/bin/env bash
# Build (or reuse) the Airflow venv in .venv-airflow/ from airflow_dags/requirements.txt.
#   scripts/airflow_venv.sh          # idempotent: rebuilt only when the requirements change
# Airflow and its Spark provider (which installs pyspark-client) never go into .venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-airflow"
REQUIREMENTS="$ROOT/airflow_dags/requirements.txt"
STAMP="$VENV/.requirements.stamp"

die() { echo "neurolake airflow venv: error: $*" >&2; exit 1; }

source "$ROOT/scripts/find_python.sh"

WANT="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)-$("$PYTHON" --version 2>&1)"
if [ -x "$VENV/bin/airflow" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ]; then
  exit 0
fi
echo "==> building $VENV for Airflow (a few minutes the first time)" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON (on Debian: apt-get install python3.11-venv)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || die "pip upgrade failed: is PyPI reachable?"
"$VENV/bin/python" -m pip install --progress-bar off -r "$REQUIREMENTS" >&2 \
  || die "installing Airflow failed: is PyPI reachable? (see the pip output above)"
echo "$WANT" > "$STAMP"
