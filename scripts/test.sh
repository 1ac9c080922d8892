#!/usr/bin/env bash
# Install with test tools, lint, run every test. Extra flags go to pytest.
# `--latest` first: test against the newest versions pyproject.toml's ranges allow instead
# of requirements.lock (what installing deliverydags into your own environment may give);
# a later scripts/install.sh brings .venv back to the lock.
# Needs Redis (REDIS_HOST/REDIS_PORT, default 127.0.0.1:6379) and PostgreSQL
# (DAGSTER_PG_HOST/PORT/USER/DB, default 127.0.0.1:5432 postgres/test) running.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --latest ]; then
  shift
  scripts/install.sh latest
  # Not the lock, on purpose; every other test still holds.
  set -- --deselect tests/test_lock.py::test_the_environment_is_the_lock "$@"
else
  scripts/install.sh dev
fi
.venv/bin/ruff check .
rc=0
.venv/bin/pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest ran no test: that is a failure" >&2
  exit 1
fi
exit "$rc"
