#!/usr/bin/env bash
# Set everything up and run the whole test suite (unit, Spark, end-to-end).
#   scripts/test.sh                # everything
#   scripts/test.sh tests/unit -q  # arguments go to pytest
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
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
