#!/usr/bin/env bash
# Installs what ovn-admission needs to run and to test, on Debian bookworm:
#   - Debian packages, only when missing: openvswitch-common and openvswitch-switch
#     (ovsdb-server, ovsdb-tool, ovs-vsctl, the Open_vSwitch schema), ovn-central and
#     ovn-common (ovn-nbctl, the OVN Northbound/Southbound schemas), openssl.
#     No service is started by this script (on a systemd host, apt may start
#     openvswitch-switch itself; the service and tests never use it).
#   - npm packages: `npm ci` when node_modules is missing or older than package-lock.json.
#   - with --for-tests (npm test): ovn-host (ovn-controller, for the data-plane tests), and etcd, kube-apiserver and kube-controller-manager for the
#     end-to-end suite, built once by scripts/kube-assets.sh into a cache outside the
#     repository (about 9 minutes the first time on 2 cores; reused after); and a Debian trixie root
#     with OVN 25.03 and Open vSwitch 3.5 (scripts/ovn-trixie.sh, debootstrap, about 2 minutes and
#     350 MB the first time) for the data-plane tests of what needs OVN >= 24.03.
# Run as root or with sudo available. A warm machine passes through in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ovsdb-server >/dev/null 2>&1 || missing+=(openvswitch-switch)
command -v ovs-vsctl >/dev/null 2>&1 || missing+=(openvswitch-switch)
[ -f /usr/share/openvswitch/vswitch.ovsschema ] || missing+=(openvswitch-common)
command -v ovn-nbctl >/dev/null 2>&1 || missing+=(ovn-central ovn-common)
[ -f /usr/share/ovn/ovn-nb.ovsschema ] || missing+=(ovn-common)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The data-plane tests run what a node runs: ovn-controller (and ovs-vswitchd, above) beside ovn-northd.
if [ "${1:-}" = "--for-tests" ]; then
  command -v ovn-controller >/dev/null 2>&1 || missing+=(ovn-host)
  command -v ovs-vswitchd >/dev/null 2>&1 || missing+=(openvswitch-switch)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  packages=$(printf '%s\n' "${missing[@]}" openvswitch-common | sort -u | tr '\n' ' ')
  as_root=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install: $packages" >&2; exit 1; }
    as_root="sudo"
  fi
  echo "setup: installing Debian packages: $packages"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get update -q
  # shellcheck disable=SC2086
  $as_root apt-get install -y -q --no-install-recommends $packages
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--for-tests" ]; then
  assets=$(bash scripts/kube-assets.sh)
  echo "setup: e2e binaries in $assets"
  trixie=$(bash scripts/ovn-trixie.sh)
  echo "setup: OVN 25.03 (Debian trixie) for the data-plane tests in $trixie"
fi
