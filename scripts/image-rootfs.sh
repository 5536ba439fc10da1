#!/usr/bin/env bash
# Lays out the container image's root filesystem as the Dockerfile's runtime
# stage does, from what this machine has: its node binary and the shared
# libraries it links, the npm registry for production dependencies, and the
# compiled service. Nothing else: no shell, no package manager.
#
#   bash scripts/image-rootfs.sh [DIR]     (default build/rootfs)
#
# test/image.test.ts runs the service from it with chroot, read-only, as
# user 65532. Run `npx tsc -b` first.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/rootfs}
for built in dist/bin/ovn-admission.js packages/ovsdb-client/dist packages/ovsdb-sandbox/dist; do
  [ -e "$built" ] || { echo "image-rootfs: $built is missing: run npx tsc -b first" >&2; exit 2; }
done
rm -rf "$out"
mkdir -p "$out"/{app,nodejs/bin,etc,tmp,dev,proc,var/run/ovn-admission}
# Mount points for the devices a container runtime provides.
touch "$out"/dev/{null,zero,random,urandom}
chmod 1777 "$out/tmp"

# The app stage: production dependencies beside the compiled service.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp package.json package-lock.json "$stage/"
for pkg in ovsdb-client ovsdb-sandbox; do
  mkdir -p "$stage/packages/$pkg"
  cp packages/$pkg/package.json "$stage/packages/$pkg/"
  cp -r packages/$pkg/dist "$stage/packages/$pkg/dist"
done
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
for dir in bin cli service domain webhooks cluster ovn tls; do
  mkdir -p "$stage/dist"
  cp -r dist/$dir "$stage/dist/$dir"
done
cp -a "$stage/." "$out/app/"
# Readable by the image's user (mktemp made the stage private), writable by nobody but root.
chmod -R u=rwX,go=rX "$out/app"

# The runtime stage: node where distroless has it, and exactly the libraries it links.
node_bin=$(command -v node)
cp "$node_bin" "$out/nodejs/bin/node"
for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
# distroless's nonroot user.
echo 'root:x:0:0:root:/root:/sbin/nologin' >"$out/etc/passwd"
echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >>"$out/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/etc/group"
echo "image-rootfs: $(du -sh "$out" | cut -f1) in $out ($(find "$out" -type f | wc -l) files)"
