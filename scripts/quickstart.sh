#!/usr/bin/env bash
# Set everything up (venv, jars), generate one day of demo data and run the nightly pipeline.
#   scripts/quickstart.sh                 # yesterday (UTC), scale 1 (~100k orders)
#   DATE=2026-11-24 SCALE=0.1 scripts/quickstart.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
DATE="${DATE:-$(date -u -d yesterday +%F)}"
SCALE="${SCALE:-1}"
cd "$ROOT"
step "generating demo raw data for $DATE (scale $SCALE)"
neurolake generate --date "$DATE" --scale "$SCALE"
step "running the nightly pipeline for $DATE"
exec neurolake nightly --date "$DATE"
