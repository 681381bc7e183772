#!/usr/bin/env bash
# Installs the Debian packages some tests use: prometheus (the real Prometheus server) and its promtool.
set -euo pipefail
if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "==> prometheus/promtool missing and not root: tests that need them will be skipped" >&2
  exit 0
fi
echo "==> installing Debian package prometheus (server and promtool)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# the package starts a system service where systemd runs; the tests start their own servers
systemctl stop prometheus 2>/dev/null || true
