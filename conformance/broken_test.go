package conformance_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// envBroken names the broken driver TestBrokenDriverChild runs the suite
// against; the test binary runs itself with it set.
const envBroken = "GWORKER_CONFORMANCE_BROKEN"

// childTimeout is the Harness.Timeout of the runs on broken drivers: short,
// so that a driver that blocks fails within seconds.
const childTimeout = 5 * time.Second

// childBound is how long one run of the suite on a broken driver may take,
// hangs included: the watchdog must have ended it by then.
const childBound = 60 * time.Second

// brokenDriver is pgxdriver with one plausible bug, the part of the suite
// that must catch it, and what its failure must say: the contract item it
// names and the advice it gives.
type brokenDriver struct {
	kind string
	run  string // -test.run pattern below TestBrokenDriverChild
	want []string
	// wantOne, if set, must have at least one of its strings in the
	// output: for a bug that shows one way or another from run to run.
	wantOne []string
	// fullTimeout runs the suite with the default Harness.Timeout instead
	// of childTimeout: for a driver that blocks in a call core makes, so
	// that the suite's watch on each call must catch it, within seconds,
	// before any wait of the test's would.
	fullTimeout bool
}

// brokenDrivers are the mistakes someone porting the contract to a new
// library would make, clause by clause.
var brokenDrivers = []brokenDriver{
	// Arguments.
	{
		// An adapter that maps nil to a zero value instead of SQL NULL.
		kind: "nil-as-empty-string",
		run:  "^Contract$/^(Arguments|ArgumentsInExec)$",
		want: []string{
			`contract item "arguments" broke: nil as text (<nil>): the server received ""`,
			"nil (SQL NULL)",
			"fix in the driver: map each Go type",
		},
	},
	{
		// Times formatted as the process's wall-clock time without an
		// offset: right only while the server's session shares the zone.
		kind: "time-as-local-text",
		run:  "^Contract$/^ArgumentsInOtherTimeZone$",
		want: []string{
			`contract item "arguments" broke: session TimeZone `,
			"time.Time in +05:30 with microseconds",
			"a time.Time must carry its offset",
			"fix in the driver: map each Go type",
		},
	},
	{
		// int64 narrowed to the library's int (a 32-bit int somewhere).
		kind: "int64-as-int32",
		run:  "^Contract$/^Arguments$",
		want: []string{
			`contract item "arguments" broke: int64 (int64)`,
			"fix in the driver: map each Go type",
		},
	},
	{
		// An empty slice sent as NULL (a nil check instead of a length
		// check, or database/sql's habit).
		kind: "empty-slice-as-null",
		run:  "^Contract$/^Arguments$",
		want: []string{
			`contract item "arguments" broke: empty []string (not NULL)`,
			"an empty slice is an empty array, not NULL",
		},
	},
	{
		// json.RawMessage sent the way database/sql drivers send []byte:
		// as bytea in hex.
		kind: "json-as-bytea",
		run:  "^Contract$/^Arguments$",
		want: []string{
			`contract item "arguments" broke: json.RawMessage as json`,
			"json.RawMessage must go as text (string(raw)), never as bytea",
		},
	},
	{
		// float64 through float32 (a library's REAL mapping).
		kind: "float64-as-float32",
		run:  "^Contract$/^Arguments$",
		want: []string{
			`contract item "arguments" broke: float64 (float64)`,
			"fix in the driver: map each Go type",
		},
	},
	// Scans and NULLs.
	{
		// int64 destinations filled through an int32.
		kind: "scan-int64-via-int32",
		run:  "^Contract$/^Scan$",
		want: []string{
			`contract item "scan" broke: select of one value of each type`,
			"fix in the driver: convert column values to the destination types in Rows.Scan",
		},
	},
	{
		// []byte handed out from one reused buffer (sql.RawBytes-style).
		kind: "bytes-not-copied",
		run:  "^Contract$/^ScannedBytesAreCopies$",
		want: []string{
			`contract item "scanned []byte are copies" broke: row 1's json, kept across Next and Close`,
			"copy bytes out of the library's read buffer in Scan",
		},
	},
	{
		// NULL into **T gives a pointer to the zero value.
		kind: "null-as-zero-value",
		run:  "^Contract$/^ScanNULL$",
		want: []string{
			`contract item "NULL into **T" broke:`,
			"check for a NULL source and set *dest = nil",
		},
	},
	{
		// NULL json into *[]byte gives an empty, non-nil slice: the adapter
		// copies with append([]byte{}, src...).
		kind: "null-bytes-as-empty",
		run:  "^Contract$/^ScanNULL$",
		want: []string{
			`contract item "NULL into **T" broke: NULL json scanned into *[]byte gave "", want nil`,
			"check for a NULL source and set *dest = nil",
		},
	},
	// Errors.
	{
		// An adapter that formats errors with %v, losing their type.
		kind: "loses-sqlstate",
		run:  "^(Contract|Engine)$/^(ErrorsExposeSQLState|MigrateConcurrently)$",
		want: []string{
			`contract item "errors expose SQLSTATE" broke: division by zero in Exec: errors.As(err, &interface{ SQLState() string }) gives "", want "22012"`,
			"core.Migrate 2 of 3 running at once on one new schema failed",
			"fix in the driver: return the library's error as it is or wrapped with %w",
		},
	},
	{
		// Errors wrapped with care in Exec but not in Rows.Err.
		kind: "loses-sqlstate-in-rows",
		run:  "^Contract$/^ErrorsExposeSQLState$",
		want: []string{
			`contract item "errors expose SQLSTATE" broke: division by zero in Query`,
			"fix in the driver: return the library's error as it is or wrapped with %w",
		},
	},
	{
		// A wrapper type with SQLState but a message of its own.
		kind: "replaces-error-message",
		run:  "^Contract$/^ErrorsExposeSQLState$",
		want: []string{
			`contract item "errors expose SQLSTATE" broke: division by zero in Exec: the message "statement failed (SQLSTATE 22012)" lost the server's "division by zero"`,
			"keeps its message",
		},
	},
	// Rows.
	{
		// Close that does nothing: the rest of the result is never read
		// and the pool never gets its connection back (closing it hangs).
		kind: "rows-close-noop",
		run:  "^Contract$/^RowsCloseReleases$",
		want: []string{
			`contract item "rows lifecycle" broke: timed out after 5s waiting for the backend that sent the closed Rows`,
			"Rows.Close did not release its connection",
			"have it close the library's rows",
		},
	},
	{
		// A Query that fetches one batch of a fixed size and stops.
		kind: "query-stops-after-1000-rows",
		run:  "^Contract$/^LargeResult$",
		want: []string{
			`contract item "rows lifecycle" broke: Database: Next returned false after 1000 rows of a 50000-row result`,
			"iterate the library's result to its end",
		},
	},
	{
		// An iteration error swallowed: Err is always nil.
		kind: "rows-err-always-nil",
		run:  "^Contract$/^RowsLifecycle$",
		want: []string{
			`contract item "rows lifecycle" broke: a division by zero at the third row`,
			"return the library's iteration error from Err",
		},
	},
	{
		// Exec reporting 1 (or "ok") instead of the command tag's count.
		kind: "rows-affected-always-1",
		run:  "^Contract$/^RowsAffected$",
		want: []string{
			`contract item "rows affected" broke: Exec(insert into`,
			"return the count from the command tag",
		},
	},
	// Transactions.
	{
		// Rollback that does nothing: others never see the writes, so only
		// the server's view of the session shows it; and the connection
		// stays checked out, so the pool's Close hangs.
		kind: "rollback-noop",
		run:  "^Contract$/^Transactions$",
		want: []string{
			`contract item "transactions" broke: after Rollback returned, the Transaction's backend`,
			`is still "idle in transaction"`,
			"call the library's own Commit and Rollback on it",
		},
	},
	{
		// Begin returning the pool itself, with no-op Commit and Rollback.
		kind: "begin-autocommit",
		run:  "^Contract$/^Transactions$",
		want: []string{
			`contract item "transactions" broke:`,
			"run every statement of a Transaction on the library's transaction object",
		},
	},
	// Context.
	{
		// Statements run with context.Background(): cancellation ignored.
		kind: "context-ignored",
		run:  "^Contract$/^ContextCancellation$",
		want: []string{
			`contract item "context cancellation" broke: Exec: select pg_sleep(`,
			`), cancelled while running, had not returned `,
			` later (5s, and twice the `,
			"pass ctx to the library's context-aware calls",
		},
	},
	// LISTEN.
	{
		// A listener that treats an empty payload as nothing to deliver.
		kind: "drops-empty-payloads",
		run:  "^Contract$/^ListenDelivers$",
		want: []string{
			`contract item "LISTEN delivery" broke: notification 3 of 5: got {Channel: "Gw Conf-`,
			`want {Channel: "gwconf:`,
			`Payload: ""}`,
			"the empty payload included",
			"fix in the driver: wait for the server to acknowledge every LISTEN",
		},
	},
	{
		// Listen starts listening in a goroutine and returns at once.
		kind: "listen-returns-early",
		run:  "^Contract$/^ListenSubscribedOnReturn$",
		want: []string{
			`contract item "Listen subscribed on return" broke: round 1 of 5: a notification sent on`,
			"wait for the server's reply (CommandComplete) before Listen returns",
		},
	},
	{
		// Receive waits on the connection with a context of its own.
		kind: "receive-ignores-ctx",
		run:  "^Contract$/^ReceiveHonoursContext$",
		want: []string{
			`contract item "Receive and ctx" broke: Receive ended by a deadline did not return within 5s`,
			"interrupt the wait without closing the connection",
		},
	},
	{
		// Close that only marks the session closed for later calls.
		kind: "close-leaves-receive-blocked",
		run:  "^Contract$/^CloseUnblocksReceive$",
		want: []string{
			`contract item "Close" broke: a Receive blocked when Close was called had not returned 5s later`,
			"have Close signal Receive (a channel or context) before releasing the connection",
		},
	},
	// Reconnection.
	{
		// The reconnect happens but is not reported.
		kind: "never-reports-reconnected",
		run:  "^Contract$/^ListenReconnects$",
		want: []string{
			`contract item "reconnect" broke: Receive, waiting for Notification{Reconnected: true}`,
			"return Notification{Reconnected: true}",
		},
	},
	// Calls that block where only core calls them: each must be reported
	// within seconds as the call it blocked in, with that call's item.
	{
		// A Query that never returns, on a statement only the engine
		// sends (the worker's fetch, FOR UPDATE SKIP LOCKED): it stands
		// for a library call that ignores ctx and waits on a lock or a
		// connection that never comes.
		kind:        "query-blocks-in-worker",
		run:         "^Engine$/^WorkerCompletesJobs$",
		fullTimeout: true,
		want: []string{
			"--- FAIL: TestBrokenDriverChild/Engine/WorkerCompletesJobs (blocked in Database.Query)",
			`contract item "calls return" broke: Database.Query has not returned after `,
			"._private_jobs as candidate",
			"the driver call blocked, in a call core made in this engine test",
			"a Query on the pool also waits for a free connection",
			"fix in the driver: pass ctx to the library's context-aware calls and wait on nothing else",
		},
	},
	{
		// Commit waits for the library to confirm the transaction ended,
		// a confirmation that never comes (here: core.Migrate's first
		// step, in the test's setup).
		kind:        "commit-blocks",
		run:         "^Engine$/^BulkAddJobs$",
		fullTimeout: true,
		want: []string{
			"(blocked in Transaction.Commit)",
			`contract item "transactions" broke: Transaction.Commit has not returned after `,
			"in a call core made in this engine test",
			"they wait for nothing else",
			"call the library's own Commit and Rollback on it",
		},
	},
	{
		// Rows streamed through a channel that the reader closes only
		// after it sent a row: Next on an empty result waits forever. The
		// contract tests read no empty result; the worker's fetch of an
		// empty queue does.
		kind:        "next-blocks-on-empty-result",
		run:         "^Engine$/^WorkerCompletesJobs$",
		fullTimeout: true,
		want: []string{
			"(blocked in Rows.Next)",
			`contract item "rows lifecycle" broke: Rows.Next has not returned after `,
			"Next returns false at the end of every result, an empty one too",
		},
	},
	{
		// Listen runs the library's serving loop and returns only when
		// its ctx ends: the worker's Listen never returns.
		kind:        "listen-serves-until-ctx-ends",
		run:         "^Engine$/^WorkerWakesUp$",
		fullTimeout: true,
		want: []string{
			"(blocked in Database.Listen)",
			`contract item "LISTEN delivery" broke: Database.Listen has not returned after `,
			"it does not wait for a notification",
		},
	},
	{
		// Receive that, when its ctx ends, waits for the session's reader
		// goroutine to stop before returning, and only Close stops it:
		// the shutdown of a worker that listens, which closes the session
		// once Receive returned, never ends.
		kind:        "receive-waits-for-reader",
		run:         "^Engine$/^WorkerWakesUp$",
		fullTimeout: true,
		want: []string{
			"(blocked in Notifications.Receive)",
			`contract item "Receive and ctx" broke: Notifications.Receive has not returned `,
			" after its ctx ended: the driver call blocked, in a call core made in this engine test",
			"interrupt the wait without closing the connection",
		},
	},
	{
		// Close waits for the session's reader goroutine, which notices
		// the close only at the next message, and none comes.
		kind:        "close-waits-for-reader",
		run:         "^Engine$/^WorkerWakesUp$",
		fullTimeout: true,
		want: []string{
			"(blocked in Notifications.Close)",
			`contract item "Close" broke: Notifications.Close has not returned after `,
			"Close must not wait for a Receive in progress",
		},
	},
	// Concurrency.
	{
		// One session for every caller: a library connection that is not
		// safe for concurrent use, made safe with a mutex, and Begin as a
		// BEGIN on it. Each call is right alone; concurrent ones land in
		// each other's transactions.
		kind: "one-session",
		run:  "^Contract$/^ConcurrentUse$",
		want: []string{
			`contract item "concurrent use" broke: goroutine `,
			"by running in each other's transactions (one session for all callers",
			"give each Transaction its own connection",
		},
	},
	{
		// Arguments kept in the Database value between their conversion
		// and the call: concurrent statements send each other's.
		kind: "shared-arguments",
		run:  "^Contract$/^ConcurrentUse$",
		want: []string{
			// Crossed arguments show as rows holding another goroutine's
			// values, or as errors (an argument count that does not fit
			// the statement) that the same round run alone does not have.
			`contract item "concurrent use" broke: goroutine `,
			"keep no per-call state in the Database value",
		},
		wantOne: []string{
			"concurrent statements sent each other's arguments",
			"the same round, run alone afterwards, succeeds: calls made at once interfere in the driver",
		},
	},
}

// The suite fails on each broken driver within a bound, naming the
// contract item and giving its advice, and passes with the driver intact.
// Each run is a child process, so that a run that blocks shows what a user
// sees in plain go test output, and cannot hang this test.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	type result struct {
		out  string
		err  error
		took time.Duration
	}
	results := make([]result, len(brokenDrivers)+1)
	// The children mostly wait on the server and on timeouts: run several
	// at once, more than go test's -parallel (GOMAXPROCS) would.
	sem := make(chan struct{}, 12)
	var wg sync.WaitGroup
	for i := range results {
		kind, run := "intact", "^Contract$"
		if i < len(brokenDrivers) {
			kind, run = brokenDrivers[i].kind, brokenDrivers[i].run
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			begin := time.Now()
			out, err := runChild(t, url, kind, run)
			results[i] = result{out, err, time.Since(begin)}
		}()
	}
	wg.Wait()

	t.Run("intact", func(t *testing.T) {
		r := results[len(brokenDrivers)]
		if r.err != nil {
			t.Fatalf("the contract tests on the intact driver, with the catalogue's harness: %v\n%s", r.err, r.out)
		}
		// A run that matched no test passes too: the intact run must
		// have run the contract tests.
		if !strings.Contains(r.out, "--- PASS: TestBrokenDriverChild/Contract ") {
			t.Fatalf("the intact run passed without running the contract tests; output:\n%s", r.out)
		}
	})
	for i, b := range brokenDrivers {
		t.Run(b.kind, func(t *testing.T) {
			r := results[i]
			var exit *exec.ExitError
			if !errors.As(r.err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("the suite on a driver with the bug %q exited with %v after %v, want status 1 (a test failure); output:\n%s", b.kind, r.err, r.took, r.out)
			}
			if r.took > childBound {
				t.Errorf("the suite took %v to fail, want less than %v", r.took, childBound)
			}
			for _, w := range b.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("the failure output does not contain %q; output:\n%s", w, r.out)
				}
			}
			if len(b.wantOne) > 0 && !slices.ContainsFunc(b.wantOne, func(w string) bool { return strings.Contains(r.out, w) }) {
				t.Errorf("the failure output contains none of %q; output:\n%s", b.wantOne, r.out)
			}
			if strings.Contains(r.out, "panic:") {
				t.Errorf("the suite panicked:\n%s", r.out)
			}
		})
	}
}

// runChild runs this test binary's TestBrokenDriverChild with the given
// broken driver and sub-tests, on the parent's server.
func runChild(t *testing.T, url, kind, run string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*childBound)
	defer cancel()
	args := []string{"-test.run=^TestBrokenDriverChild$/" + run, "-test.count=1", "-test.timeout=5m"}
	if kind == "intact" {
		args = append(args, "-test.v") // the parent checks that the contract tests ran
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envBroken+"="+kind, pgtest.EnvURL+"="+url)
	out, err := cmd.CombinedOutput()
	// Keep the output readable in the parent's failure messages.
	return regexp.MustCompile(`(?m)^=== (RUN|PAUSE|CONT).*\n`).ReplaceAllString(string(out), ""), err
}

// TestBrokenDriverChild runs the suite on a broken driver when the parent
// test starts this binary with GWORKER_CONFORMANCE_BROKEN set; otherwise it
// does nothing.
func TestBrokenDriverChild(t *testing.T) {
	kind := os.Getenv(envBroken)
	if kind == "" {
		return
	}
	// The intact driver proves the harness sound; it must not fail for
	// being slow on a loaded machine, so it keeps the default timeout.
	timeout := childTimeout
	for _, b := range brokenDrivers {
		if b.kind == kind && b.fullTimeout {
			timeout = 0
		}
	}
	if kind == "intact" {
		timeout = 0
	}
	conformance.Run(t, conformance.Harness{
		NewDatabase: func(t testing.TB) core.Database {
			cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 4
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return breakDriver(t, kind, pgxdriver.New(pool))
		},
		NewSchema: pgtest.Schema,
		Timeout:   timeout,
	})
}

func breakDriver(t testing.TB, kind string, db core.Database) core.Database {
	switch kind {
	case "intact":
		return db
	case "nil-as-empty-string":
		return argMangler{db, func(a any) any {
			if a == nil {
				return ""
			}
			return a
		}}
	case "time-as-local-text":
		return argMangler{db, func(a any) any {
			if v, ok := a.(time.Time); ok {
				return v.Local().Format("2006-01-02 15:04:05.999999")
			}
			return a
		}}
	case "int64-as-int32":
		return argMangler{db, func(a any) any {
			if v, ok := a.(int64); ok {
				return int32(v)
			}
			return a
		}}
	case "empty-slice-as-null":
		return argMangler{db, func(a any) any {
			if v := reflect.ValueOf(a); v.Kind() == reflect.Slice && v.Len() == 0 {
				if _, raw := a.(json.RawMessage); !raw {
					return nil
				}
			}
			return a
		}}
	case "json-as-bytea":
		return argMangler{db, func(a any) any {
			if v, ok := a.(json.RawMessage); ok {
				return `\x` + hex.EncodeToString(v)
			}
			return a
		}}
	case "float64-as-float32":
		return argMangler{db, func(a any) any {
			if v, ok := a.(float64); ok {
				return float64(float32(v))
			}
			return a
		}}
	case "scan-int64-via-int32":
		return rowsMangler{db, func(r core.Rows) core.Rows { return int32Scanner{r} }}
	case "bytes-not-copied":
		return rowsMangler{db, func(r core.Rows) core.Rows { return &sharedBuffer{Rows: r} }}
	case "null-as-zero-value":
		return rowsMangler{db, func(r core.Rows) core.Rows { return nullZeroer{r} }}
	case "null-bytes-as-empty":
		return rowsMangler{db, func(r core.Rows) core.Rows { return nullBytesEmpty{r} }}
	case "close-leaves-receive-blocked":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return &lazyClose{Notifications: n} }}
	case "loses-sqlstate":
		return errMangler{db, flatten, true}
	case "loses-sqlstate-in-rows":
		return errMangler{db, flatten, false}
	case "replaces-error-message":
		return errMangler{db, replaceMessage, true}
	case "rows-close-noop":
		return rowsMangler{db, func(r core.Rows) core.Rows { return closeNoop{r} }}
	case "query-stops-after-1000-rows":
		return rowsMangler{db, func(r core.Rows) core.Rows { return &rowLimit{Rows: r, left: 1000} }}
	case "rows-err-always-nil":
		return rowsMangler{db, func(r core.Rows) core.Rows { return errNil{r} }}
	case "rows-affected-always-1":
		return rowsAffectedOne{db}
	case "rollback-noop":
		return txMangler{db, func(tx core.Transaction) core.Transaction { return rollbackNoop{tx} }}
	case "begin-autocommit":
		return autocommit{db}
	case "context-ignored":
		return ctxIgnorer{db}
	case "drops-empty-payloads":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return payloadDropper{n} }}
	case "listen-returns-early":
		return earlyListen{db}
	case "receive-ignores-ctx":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return ctxlessReceive{n} }}
	case "never-reports-reconnected":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return reconnectHider{n} }}
	case "query-blocks-in-worker":
		return blockingQuery{db}
	case "commit-blocks":
		return txMangler{db, func(tx core.Transaction) core.Transaction { return blockingCommit{tx} }}
	case "next-blocks-on-empty-result":
		return rowsMangler{db, func(r core.Rows) core.Rows { return &emptyBlocks{Rows: r} }}
	case "listen-serves-until-ctx-ends":
		return servingListen{db}
	case "receive-waits-for-reader":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return readerWaiter{n} }}
	case "close-waits-for-reader":
		return listenMangler{db, func(n core.Notifications) core.Notifications { return blockingClose{n} }}
	case "one-session":
		conn, err := db.(*pgxdriver.Driver).Pool().Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Release) // before the pool's Close, registered earlier
		return &oneSession{Database: db, conn: pgxdriver.Conn(conn)}
	case "shared-arguments":
		return &sharedArgs{Database: db}
	}
	panic("unknown broken driver " + kind)
}

// argMangler changes each argument of Exec and Query (on the Database;
// the argument tests run there, except the one in another time zone,
// which runs in a Transaction).
type argMangler struct {
	core.Database
	f func(any) any
}

func (d argMangler) mangle(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = d.f(a)
	}
	return out
}

func (d argMangler) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return d.Database.Exec(ctx, sql, d.mangle(args)...)
}

func (d argMangler) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return d.Database.Query(ctx, sql, d.mangle(args)...)
}

func (d argMangler) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return argTx{tx, d}, nil
}

type argTx struct {
	core.Transaction
	d argMangler
}

func (t argTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return t.Transaction.Exec(ctx, sql, t.d.mangle(args)...)
}

func (t argTx) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return t.Transaction.Query(ctx, sql, t.d.mangle(args)...)
}

// rowsMangler wraps the Rows of the Database's Query and of its
// Transactions'.
type rowsMangler struct {
	core.Database
	f func(core.Rows) core.Rows
}

func (d rowsMangler) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := d.Database.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return d.f(rows), nil
}

func (d rowsMangler) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return rowsTx{tx, d.f}, nil
}

type rowsTx struct {
	core.Transaction
	f func(core.Rows) core.Rows
}

func (t rowsTx) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := t.Transaction.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return t.f(rows), nil
}

// int32Scanner scans int64 destinations through an int32.
type int32Scanner struct{ core.Rows }

func (r int32Scanner) Scan(dest ...any) error {
	var fix []func()
	for i, d := range dest {
		if p, ok := d.(*int64); ok {
			var v int32
			dest[i] = &v
			fix = append(fix, func() { *p = int64(v) })
		}
	}
	err := r.Rows.Scan(dest...)
	for _, f := range fix {
		f()
	}
	return err
}

// sharedBuffer hands out []byte values from one buffer it reuses.
type sharedBuffer struct {
	core.Rows
	buf []byte
}

func (r *sharedBuffer) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return err
	}
	r.buf = r.buf[:0]
	for _, d := range dest {
		if p, ok := d.(*[]byte); ok && *p != nil {
			start := len(r.buf)
			r.buf = append(r.buf, *p...)
			*p = r.buf[start:len(r.buf):len(r.buf)]
		}
	}
	return nil
}

// nullZeroer scans NULL into **T as a pointer to T's zero value.
type nullZeroer struct{ core.Rows }

func (r nullZeroer) Scan(dest ...any) error {
	if err := r.Rows.Scan(dest...); err != nil {
		return err
	}
	for _, d := range dest {
		if v := reflect.ValueOf(d); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil() {
			v.Elem().Set(reflect.New(v.Elem().Type().Elem()))
		}
	}
	return nil
}

// nullBytesEmpty turns a nil []byte (NULL) into an empty one.
type nullBytesEmpty struct{ core.Rows }

func (r nullBytesEmpty) Scan(dest ...any) error {
	err := r.Rows.Scan(dest...)
	for _, d := range dest {
		if p, ok := d.(*[]byte); ok && *p == nil {
			*p = []byte{}
		}
	}
	return err
}

// closeNoop's Close does nothing.
type closeNoop struct{ core.Rows }

func (closeNoop) Close() error { return nil }

// rowLimit ends the result after a fixed number of rows.
type rowLimit struct {
	core.Rows
	left int
}

func (r *rowLimit) Next() bool {
	if r.left == 0 {
		return false
	}
	r.left--
	return r.Rows.Next()
}

// errNil forgets iteration errors.
type errNil struct{ core.Rows }

func (errNil) Err() error     { return nil }
func (r errNil) Close() error { _ = r.Rows.Close(); return nil }

// rowsAffectedOne reports one row affected by any successful Exec.
type rowsAffectedOne struct{ core.Database }

func (d rowsAffectedOne) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	_, err := d.Database.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// errMangler rewrites errors from Exec and Query (when exec is set) and
// from Rows.Err and Close, on the Database and its Transactions.
type errMangler struct {
	core.Database
	f    func(error) error
	exec bool
}

func flatten(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("statement failed: %v", err)
}

// stateOnly keeps the SQLSTATE but not the server's message.
type stateOnly struct{ state string }

func (e stateOnly) Error() string    { return "statement failed (SQLSTATE " + e.state + ")" }
func (e stateOnly) SQLState() string { return e.state }

func replaceMessage(err error) error {
	var s interface{ SQLState() string }
	if errors.As(err, &s) {
		return stateOnly{s.SQLState()}
	}
	return err
}

func (d errMangler) execErr(err error) error {
	if d.exec {
		return d.f(err)
	}
	return err
}

func (d errMangler) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	n, err := d.Database.Exec(ctx, sql, args...)
	return n, d.execErr(err)
}

func (d errMangler) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := d.Database.Query(ctx, sql, args...)
	if err != nil {
		return nil, d.execErr(err)
	}
	return errRows{rows, d.f}, nil
}

func (d errMangler) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, d.execErr(err)
	}
	return errTx{tx, d}, nil
}

type errRows struct {
	core.Rows
	f func(error) error
}

func (r errRows) Err() error   { return r.f(r.Rows.Err()) }
func (r errRows) Close() error { return r.f(r.Rows.Close()) }

type errTx struct {
	core.Transaction
	d errMangler
}

func (t errTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	n, err := t.Transaction.Exec(ctx, sql, args...)
	return n, t.d.execErr(err)
}

func (t errTx) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := t.Transaction.Query(ctx, sql, args...)
	if err != nil {
		return nil, t.d.execErr(err)
	}
	return errRows{rows, t.d.f}, nil
}

func (t errTx) Commit(ctx context.Context) error { return t.d.execErr(t.Transaction.Commit(ctx)) }

// txMangler wraps the Database's Transactions.
type txMangler struct {
	core.Database
	f func(core.Transaction) core.Transaction
}

func (d txMangler) Begin(ctx context.Context) (core.Transaction, error) {
	tx, err := d.Database.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return d.f(tx), nil
}

type rollbackNoop struct{ core.Transaction }

func (rollbackNoop) Rollback(context.Context) error { return nil }

// autocommit's Begin hands out the pool: every statement commits alone.
type autocommit struct{ core.Database }

func (d autocommit) Begin(context.Context) (core.Transaction, error) { return poolTx{d.Database}, nil }

type poolTx struct{ core.Executor }

func (poolTx) Commit(context.Context) error   { return nil }
func (poolTx) Rollback(context.Context) error { return nil }

// ctxIgnorer runs every statement with a context of its own.
type ctxIgnorer struct{ core.Database }

func (d ctxIgnorer) Exec(_ context.Context, sql string, args ...any) (int64, error) {
	return d.Database.Exec(context.Background(), sql, args...)
}

func (d ctxIgnorer) Query(_ context.Context, sql string, args ...any) (core.Rows, error) {
	return d.Database.Query(context.Background(), sql, args...)
}

// listenMangler wraps the Database's Notifications.
type listenMangler struct {
	core.Database
	f func(core.Notifications) core.Notifications
}

func (d listenMangler) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := d.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	return d.f(n), nil
}

// payloadDropper's sessions skip notifications without a payload.
type payloadDropper struct{ core.Notifications }

func (n payloadDropper) Receive(ctx context.Context) (core.Notification, error) {
	for {
		msg, err := n.Notifications.Receive(ctx)
		if err != nil || msg.Reconnected || msg.Payload != "" {
			return msg, err
		}
	}
}

// ctxlessReceive waits without the caller's context (until Close).
type ctxlessReceive struct{ core.Notifications }

func (n ctxlessReceive) Receive(context.Context) (core.Notification, error) {
	return n.Notifications.Receive(context.Background())
}

// lazyClose's Close only stops later calls: a Receive already waiting
// goes on waiting (until its ctx ends; the real Close comes when the test
// is over).
type lazyClose struct {
	core.Notifications
	closed atomic.Bool
}

func (n *lazyClose) Receive(ctx context.Context) (core.Notification, error) {
	if n.closed.Load() {
		return core.Notification{}, fmt.Errorf("closed: %w", core.ErrNotificationsClosed)
	}
	return n.Notifications.Receive(ctx)
}

func (n *lazyClose) Close(ctx context.Context) error {
	if n.closed.Swap(true) {
		return n.Notifications.Close(ctx)
	}
	return nil
}

// reconnectHider swallows the Reconnected notifications.
type reconnectHider struct{ core.Notifications }

func (n reconnectHider) Receive(ctx context.Context) (core.Notification, error) {
	for {
		msg, err := n.Notifications.Receive(ctx)
		if err != nil || !msg.Reconnected {
			return msg, err
		}
	}
}

// earlyListen returns from Listen at once and listens in the background,
// a little later: the "connect asynchronously" mistake.
type earlyListen struct{ core.Database }

func (d earlyListen) Listen(_ context.Context, channels ...string) (core.Notifications, error) {
	l := &lateSession{ready: make(chan struct{})}
	go func() {
		defer close(l.ready)
		time.Sleep(200 * time.Millisecond)
		l.n, l.err = d.Database.Listen(context.Background(), channels...)
	}()
	return l, nil
}

type lateSession struct {
	ready chan struct{}
	n     core.Notifications
	err   error
}

func (l *lateSession) Receive(ctx context.Context) (core.Notification, error) {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return core.Notification{}, ctx.Err()
	}
	if l.err != nil {
		return core.Notification{}, l.err
	}
	return l.n.Receive(ctx)
}

func (l *lateSession) Close(ctx context.Context) error {
	<-l.ready
	if l.n == nil {
		return nil
	}
	return l.n.Close(ctx)
}

// oneSession runs every statement on one connection, one call at a time
// (a Rows holds the connection until Close), and its Transactions are
// BEGIN, COMMIT and ROLLBACK sent on that connection too.
type oneSession struct {
	core.Database // Listen
	mu            sync.Mutex
	conn          core.Executor
}

func (d *oneSession) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn.Exec(ctx, sql, args...)
}

func (d *oneSession) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	d.mu.Lock()
	rows, err := d.conn.Query(ctx, sql, args...)
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	return &unlockingRows{Rows: rows, unlock: d.mu.Unlock}, nil
}

func (d *oneSession) Begin(ctx context.Context) (core.Transaction, error) {
	if _, err := d.Exec(ctx, "begin"); err != nil {
		return nil, err
	}
	return sessionTx{d}, nil
}

type sessionTx struct{ d *oneSession }

func (t sessionTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return t.d.Exec(ctx, sql, args...)
}

func (t sessionTx) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return t.d.Query(ctx, sql, args...)
}

func (t sessionTx) Commit(ctx context.Context) error {
	_, err := t.d.Exec(ctx, "commit")
	return err
}

func (t sessionTx) Rollback(ctx context.Context) error {
	_, err := t.d.Exec(ctx, "rollback")
	return err
}

// unlockingRows gives the session back on its first Close.
type unlockingRows struct {
	core.Rows
	once   sync.Once
	unlock func()
}

func (r *unlockingRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.unlock)
	return err
}

// sharedArgs keeps the converted arguments in the Database value, to
// save an allocation per call: right as long as one goroutine uses it.
// The mutex guards each access, so the race detector stays quiet and pgx
// never reads a slice being written; the bug is the sharing between the
// conversion and the call, and the sleep, standing for the conversion's
// work, makes the catalogue see it every time.
type sharedArgs struct {
	core.Database
	mu   sync.Mutex
	args []any
}

func (d *sharedArgs) convert(args []any) []any {
	d.mu.Lock()
	d.args = append(d.args[:0], args...)
	d.mu.Unlock()
	time.Sleep(time.Millisecond) // the conversion's work
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]any(nil), d.args...)
}

func (d *sharedArgs) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return d.Database.Exec(ctx, sql, d.convert(args)...)
}

func (d *sharedArgs) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	return d.Database.Query(ctx, sql, d.convert(args)...)
}

// never is a channel nothing sends on or closes: what a call that blocks
// waits on.
var never = make(chan struct{})

// blockingQuery's Query never returns on the worker's fetch.
type blockingQuery struct{ core.Database }

func (d blockingQuery) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if strings.Contains(strings.ToLower(sql), "skip locked") {
		<-never
	}
	return d.Database.Query(ctx, sql, args...)
}

// blockingCommit's Commit never returns.
type blockingCommit struct{ core.Transaction }

func (blockingCommit) Commit(context.Context) error {
	<-never
	return nil
}

// emptyBlocks's Next, at the end of a result that had no row, waits for
// a row that never comes.
type emptyBlocks struct {
	core.Rows
	seen bool
}

func (r *emptyBlocks) Next() bool {
	if r.Rows.Next() {
		r.seen = true
		return true
	}
	if !r.seen && r.Rows.Err() == nil {
		<-never
	}
	return false
}

// readerWaiter's Receive, once its ctx ended, waits for a reader that
// only Close would stop.
type readerWaiter struct{ core.Notifications }

func (n readerWaiter) Receive(ctx context.Context) (core.Notification, error) {
	msg, err := n.Notifications.Receive(ctx)
	if ctx.Err() != nil {
		<-never
	}
	return msg, err
}

// servingListen's Listen returns only when its ctx ends.
type servingListen struct{ core.Database }

func (d servingListen) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := d.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	<-ctx.Done()
	_ = n.Close(context.WithoutCancel(ctx))
	return nil, ctx.Err()
}

// blockingClose's Close waits for a reader that never ends.
type blockingClose struct{ core.Notifications }

func (blockingClose) Close(context.Context) error {
	<-never
	return nil
}
