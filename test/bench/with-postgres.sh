#!/usr/bin/env bash
# Runs a command with a private PostgreSQL started for it (test/postgres.sh: Debian's packages, a
# Unix socket only, fsync on as deployed) and IOTMESH_PG_URL naming it; stopped and removed after:
#   bash test/bench/with-postgres.sh npm run bench -- --only store
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=test/postgres.sh
. test/postgres.sh
trap stop_postgres EXIT
start_postgres
if [ -z "${IOTMESH_PG_URL:-}" ]; then echo "iotmesh: no PostgreSQL to measure" >&2; exit 1; fi
"$@"
