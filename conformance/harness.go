package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// Harness tells the suite how to use the driver under test. Only
// NewDatabase is required.
type Harness struct {
	// NewDatabase returns a new Database, opened the way an application
	// opens it, connected to the database the suite runs against. The suite
	// calls it several times in one test (a second Database stands for
	// another process, for instance to send notifications or to look at
	// data from outside a transaction) and closes nothing itself: close the
	// Database with t.Cleanup. It fails the test with t.Fatal when it cannot
	// connect.
	NewDatabase func(t testing.TB) core.Database

	// BeginCallerTx begins a transaction on db (a Database NewDatabase
	// returned) with the library's own API — the pgx.Tx, *sql.Tx or bun.Tx
	// an application holds — and returns it wrapped by the driver for core,
	// with the library's own commit and rollback. Nil leaves out the tests
	// of adding jobs inside the caller's transaction.
	BeginCallerTx func(ctx context.Context, db core.Database) (CallerTx, error)

	// NoListen declares a driver that cannot LISTEN: its Listen returns an
	// error wrapping core.ErrNotificationsUnsupported. The suite then checks
	// exactly that, leaves out the notification tests and runs the worker
	// poll-only.
	NoListen bool

	// ListenerPIDs returns the server process ids (pg_backend_pid) of the
	// connection a Notifications session listens on, so that the reconnect
	// test can terminate it. Nil means: look it up in pg_stat_activity, as
	// the backends whose last statement is a LISTEN naming one of the
	// session's channels. Set it if the session runs other statements on
	// its connection after LISTEN (a health check, say).
	ListenerPIDs func(ctx context.Context, n core.Notifications) ([]int32, error)

	// NewSchema returns a schema name for one test that does not exist yet
	// and is dropped when the test ends. Nil means: the suite picks
	// "gwconf_" and random hex digits and drops the schema itself, through
	// a Database from NewDatabase.
	NewSchema func(t testing.TB) string

	// Timeout bounds each wait of the suite for something that should
	// happen soon (a notification, a reconnect, a connection given back)
	// and, with its multiples and fractions, each test, each step of its
	// cleanup and each driver call: a driver call that blocks becomes a
	// failure naming the contract item it blocked in instead of a hung
	// test binary (see "Drivers that block" in the package documentation).
	// Zero means 15s; a catalogue of known-broken drivers can set a few
	// seconds to fail fast.
	Timeout time.Duration
}

// CallerTx is a transaction the application holds, wrapped for core.
type CallerTx struct {
	// Executor is the driver's wrapper of the transaction (pgxdriver.Tx,
	// pqdriver.Tx, bundriver.Tx, ...).
	Executor core.Executor
	// Commit and Rollback end the transaction through the library's own
	// API, as the application would.
	Commit   func(ctx context.Context) error
	Rollback func(ctx context.Context) error
}

// Timeouts of the suite. Waits are polls or blocking calls bounded by these;
// nothing sleeps for a fixed time to let something happen.
const (
	// defaultWait is Harness.Timeout's default.
	defaultWait = 15 * time.Second
	// promptly is how soon a cancelled call must return.
	promptly = 5 * time.Second
	// testTimeout bounds a Receive that only Close should end.
	testTimeout = 2 * time.Minute
)

// limits are one suite's timeouts, derived from Harness.Timeout.
type limits struct {
	// wait bounds each wait for something that should happen soon.
	wait time.Duration
	// test bounds each test's context; the watchdog ends the process a
	// wait later if the test has still not returned.
	test time.Duration
}

func newLimits(h Harness) limits {
	w := h.Timeout
	if w <= 0 {
		w = defaultWait
	}
	return limits{wait: w, test: 8 * w}
}

// registry maps each running test to its suite's limits, so that helpers
// given only a testing.TB use the harness's timeouts even when suites with
// different ones run in one process.
var registry sync.Map // testing.TB -> limits

func lim(t testing.TB) limits {
	if l, ok := registry.Load(t); ok {
		return l.(limits)
	}
	return newLimits(Harness{})
}

// Run runs the whole suite against the driver h describes: the driver
// contract (values, errors, transactions, cancellation, notifications,
// concurrency) and the engine end to end (migrate, add, run, shut down).
// Each sub-test calls t.Parallel. A failure names the contract item that
// broke, what happened and how to fix the driver.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewDatabase == nil {
		t.Fatal("conformance: Harness.NewDatabase is required: a function returning a fresh core.Database for one test")
	}
	if h.NoListen {
		// Said plainly, since nothing else in a passing run would show it.
		t.Log("conformance: this driver is POLL-ONLY (Harness.NoListen): it cannot LISTEN, so a worker on it " +
			"finds new jobs only at its poll interval; the notification tests are left out")
	}
	s := &suite{h: h, lim: newLimits(h)}
	t.Run("Contract", s.contract)
	t.Run("Engine", s.engine)
}

type suite struct {
	h   Harness
	lim limits
	// enginePrefix is the name of the Engine test plus "/": tests under it
	// have the engine tests' call bound.
	enginePrefix string
}

// env is what one test works with.
type env struct {
	t      *testing.T
	s      *suite
	ctx    context.Context
	db     core.Database
	token  string // unique per test: for channel names, comments, schema names
	schema string // "" until newSchema
}

func (s *suite) setup(t *testing.T) *env {
	t.Helper()
	registry.Store(t, s.lim)
	ctx, cancel := context.WithTimeout(t.Context(), s.lim.test)
	w := s.watch(t)
	// Registered first, so it runs last: every cleanup has returned.
	t.Cleanup(func() {
		w.stop()
		registry.Delete(t)
	})
	t.Cleanup(cancel)
	return &env{t: t, s: s, ctx: ctx, db: s.newDatabase(t), token: randomHex(6)}
}

func (s *suite) newDatabase(t testing.TB) core.Database {
	t.Helper()
	db := s.h.NewDatabase(t)
	if db == nil {
		t.Fatal("conformance: Harness.NewDatabase returned nil")
	}
	// Runs just before the cleanup NewDatabase registered (closing the
	// pool, typically): give that a bound of its own.
	t.Cleanup(func() { watchOf(t).cleanup("the cleanup Harness.NewDatabase registered, closing the Database") })
	// Each call is watched while it runs (see inflight.go).
	return track(watchOf(t), db)
}

// other returns a second Database: another process, from the server's
// point of view.
func (e *env) other() core.Database { return e.s.newDatabase(e.t) }

// newSchema creates the test's own schema (empty) and returns its name.
func (e *env) newSchema() string {
	e.t.Helper()
	name := e.schemaName()
	e.exec(itemSetup, "create schema "+quoteIdent(name))
	return name
}

// schemaName returns a fresh schema name that is dropped when the test ends,
// without creating the schema (migrations do).
func (e *env) schemaName() string {
	e.t.Helper()
	if e.s.h.NewSchema != nil {
		e.schema = e.s.h.NewSchema(e.t)
		return e.schema
	}
	e.schema = "gwconf_" + randomHex(6)
	e.dropAtEnd(e.schema)
	return e.schema
}

// dropAtEnd drops schema when the test ends, through the test's Database
// (its own cleanup, registered earlier, runs later).
func (e *env) dropAtEnd(schema string) {
	db := e.db
	e.t.Cleanup(func() {
		watchOf(e.t).cleanup("dropping the test's schema")
		ctx, cancel := context.WithTimeout(context.Background(), lim(e.t).wait)
		defer cancel()
		if _, err := db.Exec(ctx, "drop schema if exists "+quoteIdent(schema)+" cascade"); err != nil {
			e.t.Logf("conformance: drop schema %q: %v", schema, err)
		}
	})
}

// exec runs a statement the test depends on, failing it under item.
func (e *env) exec(it item, sql string, args ...any) int64 {
	e.t.Helper()
	return mustExec(e.t, e.ctx, e.db, it, sql, args...)
}

func mustExec(t testing.TB, ctx context.Context, ex core.Executor, it item, sql string, args ...any) int64 {
	t.Helper()
	n, err := ex.Exec(ctx, sql, args...)
	if err != nil {
		it.fatalf(t, "Exec(%s) failed: %v", short(sql), err)
	}
	return n
}

// queryRow runs a query expected to return exactly one row and scans it.
func queryRow(ctx context.Context, ex core.Executor, sql string, args []any, dest ...any) error {
	rows, err := ex.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no row (Next returned false and Err nil)")
	}
	if err := rows.Scan(dest...); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	if rows.Next() {
		return errors.New("more than one row")
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

func (e *env) queryRow(it item, sql string, args []any, dest ...any) {
	e.t.Helper()
	if err := queryRow(e.ctx, e.db, sql, args, dest...); err != nil {
		it.fatalf(e.t, "Query(%s): %v", short(sql), err)
	}
}

func (e *env) count(it item, sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	e.queryRow(it, sql, args, &n)
	return n
}

// eventually polls cond until it holds, failing the test under it after
// waitTimeout. It polls often: cond is cheap or a quick statement.
func eventually(t testing.TB, it item, what string, cond func() bool) {
	t.Helper()
	wait := lim(t).wait
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			it.fatalf(t, "timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// within runs f and fails the test under it if f has not returned after d.
// f keeps running in the background then; the test stops waiting for it.
func within(t testing.TB, it item, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		it.fatalf(t, "%s did not return within %v", what, d)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral writes s as an escape string constant, which means the same
// whatever standard_conforming_strings says.
func quoteLiteral(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "E'" + strings.ReplaceAll(s, `'`, `''`) + "'"
}

// short shortens SQL for messages.
func short(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 160 {
		return sql[:157] + "..."
	}
	return sql
}
