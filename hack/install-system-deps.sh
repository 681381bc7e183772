#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing:
# - prometheus (the real Prometheus server and promtool) for the metrics tests;
# - the real nodes of the local cluster: containerd, runc, the CNI plugins (bridge, host-local,
#   portmap), iptables, ipset (the NetworkPolicy engine), conntrack and socat;
# - the image builds: buildah and debootstrap (the Python base image is made from Debian packages),
#   busybox-static (the small test images of the e2e tier).
# Nothing is started: no systemd here, and where it runs the package services are stopped again.
set -euo pipefail

# command -> package that provides it
declare -A wanted=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [containerd]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [ipset]=ipset
  [conntrack]=conntrack
  [socat]=socat
  [buildah]=buildah
  [debootstrap]=debootstrap
  [/bin/busybox]=busybox-static
)
missing=()
for cmd in "${!wanted[@]}"; do
  if [[ $cmd == /* ]]; then [[ -e $cmd ]] && continue; else command -v "$cmd" >/dev/null && continue; fi
  missing+=("${wanted[$cmd]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "==> missing Debian packages (${missing[*]}) and not root: the tests that need them are skipped" >&2
  exit 0
fi
echo "==> installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# policy-rc.d keeps the packages from starting their services where an init system would
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for service in prometheus containerd; do
  systemctl stop "$service" 2>/dev/null || true
done
