// Package pgtest provides a throwaway PostgreSQL server for tests, examples
// and the demo.
//
// A server comes from the first source that works:
//
//  1. $GWORKER_TEST_DATABASE_URL, used as is (pgtest never stops it).
//  2. A fresh cluster from the local PostgreSQL binaries (pg_config --bindir,
//     else the highest /usr/lib/postgresql/*/bin, else initdb on $PATH),
//     initialised in a temporary directory and listening on 127.0.0.1 on a
//     free port, tuned for speed rather than durability. When the process runs
//     as root, which PostgreSQL refuses, the cluster runs as the "postgres"
//     OS user.
//  3. A container from testcontainers-go, when a Docker daemon answers.
//
// If none works the error says what to install. pgtest never skips a test.
//
// # Tests
//
// Every test binary shares one server, started on first use by [URL],
// [Schema] or [Pool]. Tests isolate by schema: [Schema] hands out a fresh
// schema name and drops that schema when the test ends.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.Pool(t)
//		schema := pgtest.Schema(t)
//		// ... migrate into schema, run the test ...
//	}
//
// [Main] stops the server and removes its directory after the tests ran.
// A local cluster is also guarded by a small watchdog process that stops it
// and removes its directory within about a second of the test binary dying
// for any reason (a panic, SIGKILL, the go test timeout), and SIGINT or
// SIGTERM to the test binary stop the server before the process exits.
//
// # Other programs
//
// Examples, benchmarks and the demo call [Start], which follows the same
// source order and returns a [Server] the caller owns and must [Server.Stop].
//
// # Outages
//
// Tests of what clients do while the database is away (the fault suite)
// call [StartLocal] for a cluster of their own, never the shared one, and
// stop and start it as pg_ctl would: [Server.Shutdown] with [ShutdownFast]
// or [ShutdownImmediate], then [Server.Restart], which brings the same data
// back on the same port and waits until it answers. Only local clusters can
// be restarted, so StartLocal ignores $GWORKER_TEST_DATABASE_URL and Docker,
// and fails with what to install when there are no local binaries.
//
// # A development database
//
// [StartPersistent] keeps a cluster in a directory of the caller's choice
// (gworker dev uses the user's cache directory) on a given port: it runs
// initdb the first time, finds the server already running on later calls
// (from its postmaster.pid), and leaves it running when the process exits,
// since no watchdog guards it. [StopPersistent] stops it from any process;
// the data stays.
package pgtest
