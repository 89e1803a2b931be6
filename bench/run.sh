#!/usr/bin/env bash
# Run gworker's benchmark against Node graphile-worker and River on one
# PostgreSQL (see bench/README.md).
#
#   bench/run.sh [flags of go run ./bench]      e.g. bench/run.sh -quick
#   bench/run.sh -parts split                   the idle latency split only
#   bench/run.sh -parts scale                   the scale-out runs only
#
# The database is $DATABASE_URL if set (used as it is; the benchmark creates
# and drops the schemas gwbench_gw, gwbench_node and gwbench_river there),
# else a throwaway local PostgreSQL with durable commits (internal/pgtest),
# with pg_stat_statements loaded for the scale-out counters when installed.
# Node 22 and graphile-worker come from npm into $GWORKER_BENCH_NODE_DIR
# (default ~/.cache/gworker-bench/node) when missing; River from the Go
# module proxy (bench/river is its own module). The report goes to stdout and
# to bench/results/latest.md; progress to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export GWORKER_BENCH_NODE_DIR="${GWORKER_BENCH_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gworker-bench/node}"
GWORKER_SKIP_NODE_INTEROP= GWORKER_NODE_DIR="$GWORKER_BENCH_NODE_DIR" scripts/ensure-node.sh >&2
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/ensure-postgres.sh >&2
fi
mkdir -p bench/results
exec go run ./bench -out bench/results/latest.md "$@"
