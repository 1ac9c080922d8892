#!/usr/bin/env bash
# Install, then run today's nightly message soak on the embedded default (SQLite Dagster
# storage, the bundled reference target, no servers). Extra flags go to `deliverydags demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/deliverydags demo "$@"
