#!/usr/bin/env bash
# Fails when git tracks a private key: a PEM private key block in any tracked
# file, or a file whose name says it holds one. Part of `npm test` (lint), so
# CI refuses a commit that adds one. Outside a git checkout there is nothing
# tracked to check. An optional argument names another checkout to check.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "check-secrets: not a git checkout, skipped"; exit 0; }
# The pattern is split so that this script does not match itself.
marker='PRIVATE'' KEY-----'
found=$( { git grep -lI -e "-----BEGIN [A-Z ]*${marker}" -- . || true; \
           git ls-files -- '*.key' '*.key.new' '*.p12' '*.pfx' '*id_rsa*' '*id_ed25519*' || true; } | sort -u)
if [ -n "$found" ]; then
  echo "check-secrets: private key material is tracked by git; remove it (git rm --cached) and keep it out (.gitignore):" >&2
  printf '  %s\n' $found >&2
  exit 1
fi
echo "check-secrets: no private key tracked"
