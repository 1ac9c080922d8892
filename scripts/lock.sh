#!/usr/bin/env bash
# Regenerate requirements.lock: the exact versions (with hashes) that scripts/install.sh
# installs, resolved from pyproject.toml's ranges (runtime and dev), the build backend and
# the installer itself. Run it after changing a dependency, then run scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev >/dev/null
printf 'setuptools>=69\nuv\n' | .venv/bin/uv pip compile pyproject.toml - --extra dev \
  --universal --python-version 3.11 --generate-hashes --quiet -o requirements.lock
echo "requirements.lock: $(grep -c '^[a-z0-9]' requirements.lock) packages"
