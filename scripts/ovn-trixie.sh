#!/usr/bin/env bash
# Lays out a Debian trixie root holding OVN 25.03 and Open vSwitch 3.5 (ovn-central, ovn-host,
# openvswitch-switch), once per machine, for the data-plane tests of what needs OVN >= 24.03
# (test/harness/dataplane.ts runs its binaries through the root's own loader). Prints the root.
#
# - Cached outside the repository: ${OVN_ADMISSION_CACHE:-${XDG_CACHE_HOME:-~/.cache}/ovn-admission}/trixie-root
#   (about 350 MB; a few minutes the first time, nothing after).
# - The mirror is the one this machine's apt sources name for Debian (deb822 or one-line format).
# - OVN_TRIXIE_ROOT names a root laid out elsewhere; it is used as it is.
# Progress goes to stderr; the only line on stdout is the root.
set -euo pipefail

say() { echo "ovn-trixie: $*" >&2; }

if [ -n "${OVN_TRIXIE_ROOT:-}" ]; then
  echo "$OVN_TRIXIE_ROOT"
  exit 0
fi
cache="${OVN_ADMISSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ovn-admission}"
root="$cache/trixie-root"
if [ -x "$root/usr/bin/ovn-controller" ] && [ -x "$root/usr/lib/openvswitch-switch/ovs-vswitchd" ]; then
  echo "$root"
  exit 0
fi

as_root=""
if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  $as_root apt-get install -y -q --no-install-recommends debootstrap >&2
fi

# The first Debian archive this machine's apt sources name (not its security archive).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { say "no Debian mirror found in this machine's apt sources"; exit 1; }

started=$(date +%s)
say "laying out a trixie root with ovn-central, ovn-host and openvswitch-switch (about 350 MB, a few minutes)"
rm -rf "$root.tmp"
mkdir -p "$cache"
$as_root debootstrap --variant=minbase --include=ovn-central,ovn-host,openvswitch-switch \
  trixie "$root.tmp" "$mirror" >"$cache/trixie-debootstrap.log" 2>&1 || {
  say "debootstrap failed; the last lines of $cache/trixie-debootstrap.log:"
  tail -5 "$cache/trixie-debootstrap.log" >&2
  exit 1
}
mv "$root.tmp" "$root"
say "laid out in $(($(date +%s) - started)) s"
echo "$root"
