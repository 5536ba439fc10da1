#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl for the e2e suite,
# following the envtest convention: prints the folder holding them, for
# KUBEBUILDER_ASSETS.
#
# - If KUBEBUILDER_ASSETS already names a folder with etcd and kube-apiserver, that folder is used.
# - Otherwise they are built once into a cache folder outside the repository
#   (${OVN_ADMISSION_CACHE:-${XDG_CACHE_HOME:-~/.cache}/ovn-admission}/kube-1.20) and reused:
#   * etcd comes from Debian's etcd-server;
#   * kube-apiserver, kube-controller-manager, kube-scheduler and kubectl are built from Debian bookworm's
#     `kubernetes` source package (1.20.2, vendored) with Debian's golang-go. The
#     deb-src entry is derived at run time from this machine's own apt sources.
#     Its vendored github.com/modern-go/reflect2 v1.0.1 crashes under Go 1.18+
#     (the first time a mutating webhook's patch is applied), so it is replaced
#     with Debian's golang-github-modern-go-reflect2-dev (v1.0.2).
# Progress goes to stderr; the only line on stdout is the folder.
set -euo pipefail

say() { echo "kube-assets: $*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

cache="${OVN_ADMISSION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ovn-admission}/kube-1.20"
assets="$cache/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing_binaries() {
  for b in "${BINARIES[@]}"; do [ -x "$assets/$b" ] || echo "cmd/$b"; done
}
if [ -x "$assets/etcd" ] && [ -z "$(missing_binaries)" ]; then
  echo "$assets"
  exit 0
fi

as_root=""
if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# A deb-src twin of every deb source this machine has (deb822 or one-line format).
src_list=/etc/apt/sources.list.d/ovn-admission-deb-src.sources
if ! apt-cache showsrc kubernetes >/dev/null 2>&1 || [ -z "$(apt-cache showsrc kubernetes 2>/dev/null)" ]; then
  say "adding deb-src entries derived from this machine's apt sources"
  tmp=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$src_list" ] && continue
    # The same stanzas (URIs, Suites, Components, Signed-By), as deb-src.
    sed -E 's/^Types:.*/Types: deb-src/' "$f" >>"$tmp"
    echo >>"$tmp"
  done
  if [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed -E 's/^deb /deb-src /' >"${tmp}.list" || true
    if [ -s "${tmp}.list" ]; then $as_root cp "${tmp}.list" /etc/apt/sources.list.d/ovn-admission-deb-src.list; fi
  fi
  if [ -s "$tmp" ]; then $as_root cp "$tmp" "$src_list"; fi
  rm -f "$tmp" "${tmp}.list"
  $as_root apt-get update -q >&2
fi

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need+=(golang-github-modern-go-reflect2-dev)
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need+=(etcd-server)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
for tool in jq rsync make; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  $as_root apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

mkdir -p "$cache" "$assets"
cd "$cache"
src=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -1)
if [ -z "$src" ]; then
  say "fetching Debian's kubernetes source package"
  apt-get source -q kubernetes >&2
  src=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -1)
fi
[ -n "$src" ] || { say "apt-get source kubernetes gave no kubernetes-1.20* folder"; exit 1; }
cd "$src"

reflect2=vendor/github.com/modern-go/reflect2
if ! grep -q "1.0.2" "$reflect2/.ovn-admission-version" 2>/dev/null; then
  say "replacing vendored modern-go/reflect2 v1.0.1 with Debian's v1.0.2"
  rm -rf "$reflect2"
  mkdir -p "$reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2/. "$reflect2/"
  echo "1.0.2 from golang-github-modern-go-reflect2-dev" >"$reflect2/.ovn-admission-version"
fi

# Built as Debian's own debian/rules does: GOPATH with k8s.io/kubernetes linked to the tree, then make WHAT=.
mkdir -p .go/src/k8s.io
[ -L .go/src/k8s.io/kubernetes ] || ln -s ../../.. .go/src/k8s.io/kubernetes
export GOPATH="$PWD/.go" CGO_ENABLED=0 GOCACHE="$cache/gocache"
what=$(missing_binaries | tr '\n' ' ')
if [ -n "$what" ]; then
  say "building ${what}(about 7 minutes on 2 cores for all four; once per machine)"
  started=$(date +%s)
  env HOME="$cache" make WHAT="$what" >&2
  for target in $what; do
    b=${target#cmd/}
    cp "_output/bin/$b" "$assets/$b.new" && mv "$assets/$b.new" "$assets/$b"
  done
  say "built in $(( $(date +%s) - started )) s"
fi
ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$assets/etcd"
echo "$assets"
