#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit, Spark, end-to-end).
#   scripts/test.sh                # everything
#   scripts/test.sh tests/unit -q  # arguments go to pytest
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

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

step "running the tests"
set +e
pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "neurolake tests: error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
