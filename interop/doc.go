// Package interop proves, on every run of the tests, that gworker and Node
// graphile-worker 0.18.0 share one database contract: the Go tests of this
// package drive the real graphile-worker (and older releases, for upgrades)
// as child processes beside gworker, on one PostgreSQL, and compare what
// each side leaves in the database.
//
// The package has no code of its own outside its tests. The Node side is
// node/agent.mjs; Node 22 and the graphile-worker releases it loads are
// pinned in node/package.json and node/package-lock.json and installed,
// outside the repository, by scripts/ensure-node.sh, which `make test` runs
// first. The tests find them in $GWORKER_NODE_DIR (default
// ${GWORKER_CACHE_DIR:-$HOME/.cache/gworker}/node) and fail, saying what to
// run, when they are missing. GWORKER_SKIP_NODE_INTEROP=1 skips them, and
// each skipped test says that the skip was asked for.
package interop
