#!/usr/bin/env bash
# Install the Prometheus server (Debian's `prometheus` package) when it is missing.
# deliverydags starts its own Prometheus per run on a free loopback port, so the
# package's system service must not run: a policy-rc.d that exits 101 keeps apt from
# starting it, and any instance that started anyway is stopped and disabled.
set -euo pipefail
command -v prometheus >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "prometheus is not installed: run 'sudo apt-get install -y --no-install-recommends prometheus' (or put a prometheus binary on PATH); tests that need it will fail until then" >&2
  exit 0
fi
policy=/usr/sbin/policy-rc.d
had_policy=""
if [ -e "$policy" ]; then had_policy=1; cp -p "$policy" "$policy.deliverydags"; fi
restore() {
  if [ -n "$had_policy" ]; then mv -f "$policy.deliverydags" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends prometheus </dev/null >/dev/null; }
if ! install 2>/dev/null; then
  # A fresh container has no package lists yet: refresh them only when needed.
  apt-get update -q </dev/null >/dev/null
  install
fi
# Belt and braces: no system Prometheus may hold port 9090 or scrape anything.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
if command -v service >/dev/null; then service prometheus stop >/dev/null 2>&1 || true; fi
echo "installed $(prometheus --version 2>&1 | head -1)"
