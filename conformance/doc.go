// Package conformance proves that a driver behaves the way gworker's core
// expects. One call runs the whole suite against a driver:
//
//	func TestConformance(t *testing.T) {
//		url := os.Getenv("DATABASE_URL")
//		conformance.Run(t, conformance.Harness{
//			NewDatabase: func(t testing.TB) core.Database {
//				d, err := pgxdriver.Open(context.Background(), url)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { d.Close() })
//				return d
//			},
//			BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
//				tx, err := db.(*pgxdriver.Driver).Pool().Begin(ctx)
//				if err != nil {
//					return conformance.CallerTx{}, err
//				}
//				return conformance.CallerTx{Executor: pgxdriver.Tx(tx), Commit: tx.Commit, Rollback: tx.Rollback}, nil
//			},
//		})
//	}
//
// (This is ExampleRun, with pgxdriver for your driver: Open, the accessor
// of the native pool and Tx are the names your driver gives them.)
//
// NewDatabase is called several times per test: a second Database stands
// for another process (to send notifications, to look at data from outside
// a transaction, to run a second worker). BeginCallerTx opens a transaction
// with your library's own API and returns your wrapper of it. Set NoListen
// if your driver cannot LISTEN: the suite then checks that Listen says so
// and runs the worker poll-only. NewSchema and ListenerPIDs are optional.
//
// The suite needs a server it may create and drop schemas in, and whose
// backends it may terminate with pg_terminate_backend (to test
// reconnection): a throwaway database, never production. Every test runs in
// parallel in its own schema.
//
// # What it checks
//
// "Contract" tests each clause of the driver contract: every argument type
// (zones and microseconds of times, also in a session whose TimeZone is
// unlike the process's, JSON text, empty arrays, NULLs), SQL text passing
// through untouched, every scan destination, NULL into pointers to pointers
// in every position, []byte copies, rows affected, SQLSTATE on errors,
// recovery after errors, Rows lifecycle (a large result read to its end,
// Close giving the connection back), transactions (Rollback undoing and
// ending them on the server), context cancellation (the statement must stop
// on the server), LISTEN delivery and payloads, Listen subscribed when it
// returns, Receive and its context, Close, reconnection after the listening
// backend is terminated, and concurrent use: calls made at once keep their
// arguments and their transactions apart (run the tests with -race).
//
// "Engine" runs core on the driver end to end: migrating a new schema (also
// concurrently, and one with a hostile name), adding jobs (plain, bulk,
// keyed, in the caller's transaction with commit and rollback), and workers
// that complete jobs, back off failures by exactly e^attempts seconds, keep
// a named queue serial, skip forbidden flags, wake up on NOTIFY (or by
// polling) and shut down cleanly.
//
// # Reading a failure
//
// Every failure names the contract item that broke, says what happened,
// restates the clause and says how to fix the driver, for example:
//
//	contract item "errors expose SQLSTATE" broke: division by zero in Exec:
//	errors.As(err, &interface{ SQLState() string }) gives "", want "22012"
//	    contract: an error the server reports ... has a method SQLState() string ...
//	    fix in the driver: ... wrap it in a type that has SQLState and Unwrap ...
//
// Engine failures usually follow from contract failures; fix those first.
//
// # Drivers that block
//
// Nothing in the suite waits without a bound. Each wait for something that
// should happen soon ends after Harness.Timeout (15s unless set), each test's
// context after eight of those, and the watchdog of each test bounds the
// test and each step of its cleanup (closing a Notifications session,
// dropping the schema, the cleanup NewDatabase registered).
//
// The watchdog also watches every call into the driver, whoever makes it:
// the suite wraps each Database NewDatabase returns and records each call
// of the contract while it runs (Exec, Query, Begin, Commit, Rollback,
// CopyFrom, Rows.Next, Scan, Err and Close, Listen, Receive and
// Notifications.Close). In the engine tests, where the calls are core's, a
// call that has not returned after a third of Harness.Timeout, and at
// least 5s (so 5s by default), is blocked; a Receive is blocked only that
// long after its ctx ended, since waiting is its job. In the contract
// tests, which bound their own calls and report them under their own item,
// the bound is a backstop: two Timeouts and 5s. Time in which the test
// process itself did not run (a machine too loaded to schedule it) does
// not count. A blocked call fails the test like this:
//
//	--- FAIL: TestConformance/Engine/WorkerCompletesJobs (blocked in Transaction.Commit)
//	    contract item "transactions" broke: Transaction.Commit has not returned after 5.1s: the driver call blocked, in a call core made in this engine test
//	        contract: ...
//	        fix in the driver: ...
//	    the call's goroutine is blocked in: ...
//
// followed by the other calls in flight and the failures reported before.
// A test or cleanup step that outlives its bound is reported the same way,
// naming the contract item of the test, what it was waiting for and where
// the test goroutine is stuck. Since a blocked goroutine cannot be
// stopped, the watchdog then ends the test binary with status 1. A usual
// cause is a connection the driver never gave back (a Rows.Close or a
// Rollback that does nothing), for which the pool's Close, or a Query on
// the emptied pool, waits forever.
//
// # Poll-only drivers
//
// A driver run with Harness.NoListen is poll-only: a worker on it finds new
// jobs only at its poll interval, never at once. Run says so in its output
// (go test -v), and the suite checks only that Listen reports
// core.ErrNotificationsUnsupported.
package conformance
