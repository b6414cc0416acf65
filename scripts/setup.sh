# Sourced by quickstart.sh and test.sh: checks the machine, builds .venv, fetches JVM jars.
# Everything it creates lives in ignored folders of the checkout (.venv/, .cache/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
CACHE="$ROOT/.cache"

die() { echo "neurolake setup: error: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }

source "$ROOT/scripts/find_python.sh"

if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="$(command -v java || true)"; fi
[ -n "$JAVA" ] || die "Java 17+ is required but 'java' is not on PATH: install openjdk-17-jdk-headless or set JAVA_HOME"
JAVA_MAJOR="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
[ "${JAVA_MAJOR:-0}" -ge 17 ] || die "Java ${JAVA_MAJOR:-unknown} found at $JAVA, Spark 4 needs Java 17+: install openjdk-17 and set JAVA_HOME"

mkdir -p "$CACHE"
STAMP="$CACHE/venv.stamp"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)-$("$PYTHON" --version 2>&1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  step "creating $VENV and installing the project (a few minutes the first time)"
  "$PYTHON" -m venv "$VENV" || die "cannot create a venv with $PYTHON (on Debian: apt-get install python3.11-venv)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || die "pip upgrade failed: is PyPI reachable?"
  "$VENV/bin/python" -m pip install --progress-bar off -e "$ROOT[test]" >&2 \
    || die "installing the project failed: is PyPI reachable? (see the pip output above)"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

# Secrets are never defaults in code: a fresh checkout gets random local ones in the files
# conf/local.yaml names (.cache/secrets/, mode 0600 in a 0700 folder); existing ones are kept.
neurolake secrets init --conf-file "$ROOT/conf/local.yaml" >&2 \
  || die "cannot create the local secrets in $CACHE/secrets (see the line above)"

step "JVM jars (Delta) from Maven Central into $CACHE/jars (once; later runs are offline)"
neurolake jars --conf-file "$ROOT/conf/local.yaml" >/dev/null
