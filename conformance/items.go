package conformance

import (
	"fmt"
	"testing"
)

// item is one clause of the driver contract, or one engine behaviour that
// rests on several clauses. Every failure names its item, says what
// happened, restates the clause and says how to fix the driver.
type item struct {
	name     string
	contract string
	fix      string
}

func (it item) message(what string) string {
	return fmt.Sprintf("contract item %q broke: %s\n    contract: %s\n    fix in the driver: %s", it.name, what, it.contract, it.fix)
}

func (it item) errorf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := it.message(fmt.Sprintf(format, args...))
	recordFailure(t, msg)
	t.Error(msg)
}

func (it item) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := it.message(fmt.Sprintf(format, args...))
	recordFailure(t, msg)
	t.Fatal(msg)
}

// The driver contract (core/driver.go).
var (
	itemSetup = item{
		name:     "basic statements",
		contract: "Exec and Query run plain statements (create a schema or table, insert, select)",
		fix:      "make Exec and Query work at all first; the failing statement is shown above",
	}
	itemArgs = item{
		name: "arguments",
		contract: "Exec and Query pass every argument type core uses so that the server receives exactly that value: " +
			"string, int16, int32, int64, bool, float64, time.Time (any zone, microseconds kept), " +
			"json.RawMessage (sent as JSON text), nil (SQL NULL), []string (text[]) and []int64 (bigint[]), empty slices included",
		fix: "map each Go type to the library's encoding in Exec and Query: slices need array support " +
			"(lib/pq: pq.StringArray / pq.Int64Array; database/sql drivers do not take slices), " +
			"json.RawMessage must go as text (string(raw)), never as bytea, and an empty slice is an empty array, not NULL",
	}
	itemSQLText = item{
		name: "SQL text untouched",
		contract: "the statement text reaches the server as written, with only the $N parameters bound: " +
			"'?' (the jsonb operators ?, ?| and ?&), quoted strings, quoted identifiers, dollar-quoted text " +
			"and comments are left alone, and $10 is never read as $1 followed by 0",
		fix: "hand the text to the server with positional $N parameters; never pass it through a query builder's " +
			"formatter (bun's DB.QueryContext rewrites '?': use the *sql.DB underneath); if arguments are " +
			"interpolated on the client, the lexer must skip quoted strings, quoted identifiers, dollar quotes and comments",
	}
	itemScan = item{
		name: "scan",
		contract: "Rows.Scan fills pointers to string, int16, int32, int64, bool, float64, time.Time, " +
			"[]byte (json and jsonb columns give their raw JSON text), []string and []int64",
		fix: "convert column values to the destination types in Rows.Scan; database/sql cannot scan arrays by itself: " +
			"wrap *[]string and *[]int64 destinations in an array scanner (for lib/pq: pq.StringArray, pq.Int64Array)",
	}
	itemScanNull = item{
		name: "NULL into **T",
		contract: "a NULL column scanned into a pointer to a pointer (**string, **int32, **time.Time, **[]string, ...) " +
			"sets the inner pointer to nil, and a value sets it to a new pointer to the value; NULL scanned into *[]byte gives nil",
		fix: "database/sql and pgx do this for the types they know; for destinations the driver wraps itself " +
			"(arrays, say) check for a NULL source and set *dest = nil",
	}
	itemNullPositions = item{
		name:     "NULL in every position",
		contract: "NULLs in any column of any row leave the other columns' values where they belong",
		fix:      "keep exactly one destination per column; never skip or compact NULL columns when copying values to destinations",
	}
	itemBytesCopied = item{
		name:     "scanned []byte are copies",
		contract: "a []byte scanned from a row stays valid and unchanged after Next moves on and after Close",
		fix:      "copy bytes out of the library's read buffer in Scan (database/sql's Scan into *[]byte copies, sql.RawBytes does not); never hand out a slice of a reused buffer",
	}
	itemRowsAffected = item{
		name:     "rows affected",
		contract: "Exec returns the number of rows an INSERT, UPDATE or DELETE affected",
		fix:      "return the count from the command tag (pgx: CommandTag.RowsAffected; database/sql: Result.RowsAffected)",
	}
	itemSQLState = item{
		name: "errors expose SQLSTATE",
		contract: "an error the server reports, from Exec, Query, Rows or a Transaction, keeps its message and has a method " +
			"SQLState() string reachable with errors.As; core tells a concurrent migrator's unique violation (23505) " +
			"and a missing table (42P01) from real failures this way",
		fix: "return the library's error as it is or wrapped with %w (pgx's *pgconn.PgError and lib/pq's *pq.Error have SQLState); " +
			"if the library's error type lacks the method (bun's pgdriver.Error), wrap it in a type that has SQLState " +
			"and Unwrap, so errors.As reaches both",
	}
	itemRecovery = item{
		name:     "usable after errors",
		contract: "a failed statement leaves the Database usable, and a Transaction in which a statement failed rolls back cleanly",
		fix:      "give the connection back to the pool after an error (closing Rows) and discard connections the library reports as broken",
	}
	itemRows = item{
		name: "rows lifecycle",
		contract: "Next returns every row of a result, however large; Rows.Close may be called more than once and before " +
			"all rows were read, gives the connection back (to the pool, idle on the server), Next returns false after it, " +
			"and an error in the middle of a result is returned by Err (or Close)",
		fix: "iterate the library's result to its end (no row limit, no single fetch of a fixed size); make Close idempotent " +
			"and have it close the library's rows, which drains or discards the rest of the result and releases the connection; " +
			"return the library's iteration error from Err",
	}
	itemTx = item{
		name: "transactions",
		contract: "the statements of a Transaction run in one session and one transaction: others do not see its writes " +
			"before Commit, Rollback undoes them, and Commit and Rollback end the transaction on the server and release its connection",
		fix: "run every statement of a Transaction on the library's transaction object (pgx.Tx, *sql.Tx), never on the pool, " +
			"and call the library's own Commit and Rollback on it",
	}
	itemCancel = item{
		name: "context cancellation",
		contract: "when ctx is cancelled, Exec, Query and Rows.Next return an error promptly and the statement stops on the server; " +
			"an already cancelled ctx fails at once; the Database stays usable",
		fix: "pass ctx to the library's context-aware calls (ExecContext, QueryContext); if the library ignores cancellation, " +
			"send PostgreSQL a cancel request for the connection when ctx is done and discard that connection",
	}
	itemCalls = item{
		name: "calls return",
		contract: "Exec, Query, Begin and CopyFrom return once the server has answered, and promptly with an error once ctx ends; " +
			"no call waits for something only another call would do",
		fix: "pass ctx to the library's context-aware calls and wait on nothing else: no channel, lock or condition that only " +
			"another call releases; a pool waits for a free connection, so every Rows.Close, Commit and Rollback must give theirs back",
	}
	itemListenUnsupported = item{
		name:     "Listen unsupported",
		contract: "a driver that cannot LISTEN returns from Listen an error wrapping core.ErrNotificationsUnsupported, and the harness says NoListen",
		fix:      "return fmt.Errorf(\"...: %w\", core.ErrNotificationsUnsupported) from Listen, and set Harness.NoListen (or implement Listen and clear it)",
	}
	itemListen = item{
		name: "LISTEN delivery",
		contract: "Listen returns once the session listens on every channel; Receive then returns each notification sent on them, " +
			"in order, with channel and payload intact (the empty payload included), and nothing sent on other channels",
		fix: "wait for the server to acknowledge every LISTEN before Listen returns (quote channel names as identifiers), " +
			"and hand every notification to Receive, buffering rather than dropping",
	}
	itemListenSubscribed = item{
		name: "Listen subscribed on return",
		contract: "when Listen returns, the session already listens on every channel: a notification sent " +
			"by anyone right after Listen returned arrives",
		fix: "run LISTEN for each channel and wait for the server's reply (CommandComplete) before Listen returns; " +
			"never start listening in a goroutine that Listen does not wait for",
	}
	itemReceiveCtx = item{
		name: "Receive and ctx",
		contract: "Receive returns ctx.Err() when ctx ends, and the session stays subscribed: " +
			"a notification that arrives later is returned by a later Receive",
		fix: "interrupt the wait without closing the connection (a read deadline, or a reader goroutine feeding a channel)",
	}
	itemClose = item{
		name: "Close",
		contract: "Close unblocks a Receive in progress; it and every later Receive return an error wrapping core.ErrNotificationsClosed; " +
			"Close may be called twice",
		fix: "have Close signal Receive (a channel or context) before releasing the connection, and return " +
			"fmt.Errorf(\"...: %w\", core.ErrNotificationsClosed) from Receive once closed",
	}
	itemReconnect = item{
		name: "reconnect",
		contract: "when the listening connection is lost, the session reconnects by itself, LISTENs again on every channel " +
			"and says so with a Notification whose Reconnected is true; notifications sent afterwards arrive",
		fix: "on a connection error in Receive, reconnect with a backoff until it succeeds or Close is called, re-run LISTEN " +
			"for every channel, then return Notification{Reconnected: true} (lib/pq's Listener sends nil on its channel for this)",
	}
	itemConcurrency = item{
		name:     "concurrent use",
		contract: "a Database and its Notifications are safe for concurrent use: core's worker fetches, records outcomes and lets handlers add jobs at once",
		fix: "keep no per-call state in the Database value; guard shared state with a mutex; give each Transaction its own connection " +
			"(a single connection guarded by a mutex is not a pool: concurrent callers' statements would run in one session, inside each other's transactions)",
	}
)

// The engine on the driver: each rests on several clauses above, so the
// fix points at them.
var (
	itemMigrate = item{
		name: "engine: migrate",
		contract: "core.Migrate installs the schema (long multi-statement SQL without arguments, dollar-quoted function bodies), " +
			"is idempotent, and copes with concurrent migrators (SQLSTATE 23505 and 42P07 tell it another won)",
		fix: "see the failures of \"SQL text untouched\", \"errors expose SQLSTATE\" and \"transactions\"; Exec without " +
			"arguments must accept several statements",
	}
	itemAdd = item{
		name:     "engine: add jobs",
		contract: "Utils.AddRawJob, AddJobs, RemoveJob, RescheduleJobs, PermanentlyFailJobs and CompleteJobs store and return jobs exactly",
		fix:      "see the failures of \"arguments\", \"scan\" and \"NULL into **T\": these calls pass and scan every type the contract lists",
	}
	itemCallerTx = item{
		name: "engine: caller's transaction",
		contract: "a job added through the driver's wrapper of the application's own transaction is visible to others " +
			"only after the application commits, and is gone if it rolls back",
		fix: "the wrapper (like pgxdriver.Tx) must run core's statements on the application's transaction object itself, " +
			"never on the pool, and never commit or roll back on its own",
	}
	itemWorker = item{
		name:     "engine: worker runs jobs",
		contract: "a worker fetches jobs, runs their handlers with the payload and deletes completed jobs",
		fix:      "see the failures of \"arguments\" and \"scan\"; the fetch passes []int64 task ids and scans every job column",
	}
	itemBackoff = item{
		name: "engine: failure and backoff",
		contract: "a failed job keeps its error message and is retried after exp(attempts) seconds: " +
			"run_at = the failure's now() + e^attempts, and it is unlocked",
		fix: "see the failures of \"arguments\" (json.RawMessage) and \"rows affected\"",
	}
	itemSerial = item{
		name:     "engine: serial queue",
		contract: "jobs in one named queue run one at a time, even with several workers and slots",
		fix:      "see the failures of \"transactions\" and \"concurrent use\"",
	}
	itemFlags = item{
		name:     "engine: forbidden flags",
		contract: "a worker with ForbiddenFlags skips jobs carrying them (the fetch uses the jsonb operator ?|)",
		fix:      "see the failures of \"SQL text untouched\": a '?' in the statement must reach the server",
	}
	itemWake = item{
		name: "engine: wake up",
		contract: "an idle worker runs a new job long before its poll interval when the driver can LISTEN " +
			"(NOTIFY jobs:insert wakes it), and by polling alone when it cannot",
		fix: "see the failures of \"LISTEN delivery\"; a driver that cannot LISTEN must say so with core.ErrNotificationsUnsupported",
	}
	itemRecoverySweep = item{
		name: "engine: dead-worker recovery",
		contract: "Utils.SweepStaleWorkers frees a dead worker's jobs and queue in one transaction, as BeforeRecover " +
			"hooks decide per job, and a worker then runs them",
		fix: "see the failures of \"arguments\" ([]string, []int64 and bool parameters), \"scan\" and \"transactions\"",
	}
	itemBulk = item{
		name: "engine: bulk add",
		contract: "Utils.BulkAddJobs stores exactly the rows AddJobs stores: through CopyFrom when the driver's " +
			"transactions implement core.CopyFromer, through one INSERT otherwise",
		fix: "a CopyFrom must write int16, int32, time.Time, json.RawMessage (json and jsonb) and nil values unchanged, " +
			"or return core.ErrCopyUnsupported before sending anything",
	}
	itemInspect = item{
		name: "engine: inspect and act",
		contract: "Utils.ListJobs, CountJobs, GetJob, JobStats, ListQueues, ListTasks and ListKnownCrontabs filter and read jobs exactly, " +
			"and filter actions (FailMatching, RetryJobs) change the matching jobs in batches, a dry run none",
		fix: "see the failures of \"arguments\" ([]string, []int64, json.RawMessage and float64 parameters), \"SQL text untouched\" " +
			"(the jsonb operator ?&) and \"scan\" (text[] and bigint[] columns into []string and []int64, NULL into **T)",
	}
	itemShutdown = item{
		name: "engine: shutdown",
		contract: "cancelling Run's context stops the worker within its grace period and hands an interrupted job back " +
			"unlocked, its attempt not counted",
		fix: "see the failures of \"context cancellation\" and \"Close\": Receive must return when its ctx ends",
	}
)
