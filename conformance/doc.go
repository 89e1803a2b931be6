// Package conformance proves that a driver behaves the way gworker's core
// expects. One call runs the whole suite against a driver:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{NewDatabase: ...})
//	}
//
// gworker's own drivers (pgxdriver in both of pgx's protocols, pqdriver and
// bundriver) pass it, and so must yours.
//
// # Writing your own driver
//
// core talks to PostgreSQL through three small interfaces declared in
// core/driver.go — Database, Transaction and Notifications — and nothing
// else. A driver for another library is one type implementing Database
// (Exec, Query, Begin, Listen), the Rows and Transaction it returns, and a
// Notifications session for LISTEN, usually a few hundred lines. What the
// values must look like is the contract in core/driver.go; in short:
//
//   - Arguments are string, int16, int32, int64, bool, float64, time.Time,
//     json.RawMessage (sent as JSON text), nil (SQL NULL), []string and
//     []int64, with $1, $2, ... placeholders, and the statement text reaches
//     the server untouched otherwise (it contains '?' operators, quoted
//     identifiers and dollar quotes).
//   - Scan fills pointers to those types, []byte for json and jsonb, and
//     pointers to pointers for columns that may be NULL. Scanned []byte are
//     copies.
//   - Server errors keep a SQLState() string method reachable with
//     errors.As.
//   - A cancelled context stops a statement, on the server too.
//   - Listen returns once subscribed; Receive delivers every notification in
//     order, returns ctx.Err() without losing anything when its context
//     ends, reconnects by itself after a lost connection (reporting
//     Notification{Reconnected: true}) and returns an error wrapping
//     core.ErrNotificationsClosed after Close. A driver that cannot LISTEN
//     returns an error wrapping core.ErrNotificationsUnsupported and the
//     worker polls.
//
// Offer a wrapper for a transaction your users already hold (like
// pgxdriver.Tx), so they can add jobs atomically with their own writes.
// The drivers in this module share one shape, which a driver of your own
// may follow so that switching to it changes one line: Open(ctx, url,
// options...) owns its pool, New(native, options...) wraps the caller's,
// Tx(nativeTx) wraps a transaction, and Close() error closes what Open
// opened. A driver that cannot LISTEN without more configuration should
// ask for it rather than quietly report core.ErrNotificationsUnsupported:
// that error is for a choice the user made (PollOnly in this module's
// drivers).
//
// # Proving it
//
// Write a test that describes the driver in a Harness and hands it to Run.
// About twenty lines, against any PostgreSQL 12 or newer you can create
// schemas in:
//
//	func TestConformance(t *testing.T) {
//		url := os.Getenv("DATABASE_URL")
//		conformance.Run(t, conformance.Harness{
//			NewDatabase: func(t testing.TB) core.Database {
//				db, err := mydriver.Open(context.Background(), url)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { db.Close() })
//				return db
//			},
//			BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
//				tx, err := db.(*mydriver.Driver).Native().Begin(ctx)
//				if err != nil {
//					return conformance.CallerTx{}, err
//				}
//				return conformance.CallerTx{Executor: mydriver.Tx(tx), Commit: tx.Commit, Rollback: tx.Rollback}, nil
//			},
//		})
//	}
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
// (zones and microseconds of times, JSON text, empty arrays, NULLs), SQL
// text passing through untouched, every scan destination, NULL into
// pointers to pointers in every position, []byte copies, rows affected,
// SQLSTATE on errors, recovery after errors, Rows lifecycle, transactions,
// context cancellation (the statement must stop on the server), LISTEN
// delivery and payloads, Receive and its context, Close, reconnection after
// the listening backend is terminated, and concurrent use (run the tests
// with -race).
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
package conformance
