#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit, Spark, end-to-end).
#   scripts/test.sh                # lint, type check, then every test
#   scripts/test.sh tests/unit -q  # arguments go to pytest (lint and type check are skipped)
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
fail() { echo "neurolake tests: error: $*" >&2; exit 1; }

# Debian packages the end-to-end tests use: a headless browser and a PostgreSQL server.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing ${missing[*]} (Debian packages) for the end-to-end tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >&2 \
      || die "apt-get install ${missing[*]} failed"
  else
    echo "warning: ${missing[*]} not installed and not root: the tests that need them will be skipped" >&2
  fi
fi

step "Airflow venv (.venv-airflow) for the DAG tests"
bash "$ROOT/scripts/airflow_venv.sh"

if [ $# -eq 0 ]; then
  step "lint (ruff check, ruff format --check) and type check (mypy)"
  ruff check --quiet . || fail "ruff check found problems (fix them, or 'ruff check --fix' for the safe ones)"
  ruff format --check --quiet . || fail "files need formatting: run 'ruff format .'"
  mypy || fail "mypy found type errors"
fi

step "running the tests"
set +e
pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  fail "pytest collected no tests"
fi
exit "$code"
