#!/usr/bin/env bash
# Install with test tools, lint, run every test. Extra flags go to pytest.
# Needs Redis (REDIS_HOST/REDIS_PORT, default 127.0.0.1:6379) and PostgreSQL
# (DAGSTER_PG_HOST/PORT/USER/DB, default 127.0.0.1:5432 postgres/test) running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
.venv/bin/ruff check .
rc=0
.venv/bin/pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest ran no test: that is a failure" >&2
  exit 1
fi
exit "$rc"
