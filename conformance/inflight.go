package conformance

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gworker/gworker/core"
)

// The suite bounds its own waits, but in an engine test most driver calls
// are core's: a worker's fetch, a completion, a migration step, the
// listener's Receive. A call that never returns there leaves the test
// waiting inside core, where only the test's bound (eight Timeouts) would
// end it, and the report could name only the test. So every Database the
// suite hands out is wrapped: each call of the contract (Exec, Query,
// Begin, Commit, Rollback, CopyFrom, the Rows methods, Listen, Receive,
// Close) is recorded while it runs, with the contract item it belongs to.
// The watchdog's checker looks at the calls of every running test ten
// times a second, and a call in flight longer than its test's call bound
// is blocked: the checker reports it like the watchdog does (the item, the
// call and its statement, where it is stuck, the other calls in flight,
// the failures reported so far) and ends the test binary.
//
// A Receive is blocked only once its ctx has ended: waiting for a
// notification is its job.
//
// Bounds are measured on a clock that only runs while this process does:
// the checker advances it by the time since its last tick, at most
// maxLiveStep a tick, so a process starved of CPU on a loaded machine (or
// stopped in a debugger) does not count its stall against the driver.

const (
	// checkEvery is how often the checker looks at the calls in flight.
	checkEvery = 100 * time.Millisecond
	// maxLiveStep is the most one tick adds to the live clock.
	maxLiveStep = time.Second
	// minCallBound is the engine tests' call bound when Harness.Timeout is
	// 15s or less: a single statement of core's takes milliseconds; five
	// seconds of live time leave a wide margin for a loaded machine and
	// still fail a blocked driver within seconds.
	minCallBound = 5 * time.Second
)

// callBounds are the call bounds of a suite. In an engine test nothing but
// core bounds the driver's calls, so the bound is tight: a third of
// Harness.Timeout, at least minCallBound (5s with the default Timeout). A
// contract test bounds its own calls, at most a wait and a prompt return
// for one call, and reports them under their own item: there the bound is
// only a backstop after those, two waits and a prompt return.
func callBounds(l limits) (engine, contract time.Duration) {
	return max(minCallBound, l.wait/3), 2*l.wait + promptly
}

// liveClock is the time this process has been running checkers, in
// nanoseconds; see maxLiveStep.
var liveClock atomic.Int64

func liveNow() time.Duration { return time.Duration(liveClock.Load()) }

// liveStep is what a tick adds to the live clock when elapsed passed since
// the last one.
func liveStep(elapsed time.Duration) time.Duration { return min(elapsed, maxLiveStep) }

var checker struct {
	sync.Mutex
	running bool
}

// startChecker starts the checker if it is not running; it stops itself
// when no test is watched.
func startChecker() {
	checker.Lock()
	defer checker.Unlock()
	if checker.running {
		return
	}
	checker.running = true
	go runChecker()
}

func runChecker() {
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	last := time.Now()
	for now := range tick.C {
		liveClock.Add(int64(liveStep(now.Sub(last))))
		last = now
		watched := false
		watchdogs.Range(func(_, v any) bool {
			watched = true
			v.(*watchdog).checkCalls()
			return true
		})
		if !watched {
			checker.Lock()
			// A test may have started watching since the Range.
			empty := true
			watchdogs.Range(func(any, any) bool { empty = false; return false })
			if empty {
				checker.running = false
				checker.Unlock()
				return
			}
			checker.Unlock()
		}
	}
}

// call is one driver call in flight, or the Rows whose methods are called.
type call struct {
	op  string // "Database.Query", "Rows.Next", ...
	it  item
	sql string // the statement, shortened; "" for calls without one
	gid string // the calling goroutine, to find its stack
	// state is 0 when no call is running (Rows between calls), else one
	// more than the live clock at the call's start (for a Receive: when
	// its ctx ended) shifted left by two, with the Rows method running in
	// the low two bits: one atomic store a call, for Rows read by the row.
	state atomic.Int64
}

// The Rows methods, as kept in call.state.
const (
	rowsNext = iota
	rowsScan
	rowsErr
	rowsClose
)

var rowsMethods = [...]string{"Rows.Next", "Rows.Scan", "Rows.Err", "Rows.Close"}

// mark records a call running since live time start.
func (c *call) mark(start time.Duration, method int) {
	c.state.Store(int64(start)<<2 | int64(method) + 1)
}

// running returns since when the call runs and which Rows method it is;
// ok is false when it is not running.
func (c *call) running() (since time.Duration, method int, ok bool) {
	v := c.state.Load()
	if v == 0 {
		return 0, 0, false
	}
	v--
	return time.Duration(v >> 2), int(v & 3), true
}

func (c *call) name() string {
	if c.op == "Rows" {
		if _, m, ok := c.running(); ok {
			return rowsMethods[m]
		}
	}
	return c.op
}

// begin records a call starting; end must follow. Both do nothing once
// the test's watchdog has stopped.
func (w *watchdog) begin(op string, it item, sql string) *call {
	c := &call{op: op, it: it, sql: sql, gid: goroutineID()}
	c.mark(liveNow(), 0)
	if !w.add(c) {
		return nil
	}
	return c
}

func (w *watchdog) add(c *call) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.calls[c] = struct{}{}
	return true
}

func (w *watchdog) end(c *call) {
	if c == nil {
		return
	}
	w.mu.Lock()
	delete(w.calls, c)
	w.mu.Unlock()
}

// beginReceive records a Receive, which counts as running only once ctx
// has ended.
func (w *watchdog) beginReceive(ctx context.Context) (*call, func()) {
	c := &call{op: "Notifications.Receive", it: itemReceiveCtx, gid: goroutineID()}
	if !w.add(c) {
		return nil, func() {}
	}
	stop := context.AfterFunc(ctx, func() { c.mark(liveNow(), 0) })
	return c, func() { stop(); w.end(c) }
}

// blockedCall returns the call of the test running the longest past the
// call bound at live time now, if any, and how long it has run.
func (w *watchdog) blockedCall(now time.Duration) (blocked *call, age time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return nil, 0
	}
	for c := range w.calls {
		since, _, ok := c.running()
		if !ok {
			continue
		}
		a := now - since
		if a > w.callBound && (blocked == nil || a > age) {
			blocked, age = c, a
		}
	}
	return blocked, age
}

// checkCalls reports the call found blocked, if any, and ends the process.
func (w *watchdog) checkCalls() {
	blocked, age := w.blockedCall(liveNow())
	if blocked == nil {
		return
	}
	var b strings.Builder
	what := fmt.Sprintf("%s has not returned after %v", blocked.name(), age.Round(100*time.Millisecond))
	if blocked.op == "Notifications.Receive" {
		what = fmt.Sprintf("Notifications.Receive has not returned %v after its ctx ended", age.Round(100*time.Millisecond))
	}
	if blocked.sql != "" {
		what += " (" + blocked.sql + ")"
	}
	what += ": the driver call blocked"
	if w.engine {
		what += ", in a call core made in this engine test"
	}
	fmt.Fprintf(&b, "--- FAIL: %s (blocked in %s)\n", w.t.Name(), blocked.name())
	fmt.Fprintf(&b, "    %s\n", blocked.it.message(what))
	if h := callHints[blocked.name()]; h != "" {
		fmt.Fprintf(&b, "    %s\n", h)
	}
	if st := stackOf(blocked.gid); st != "" {
		fmt.Fprintf(&b, "    the call's goroutine is blocked in:\n%s\n", indent(st, "        "))
	}
	if list := w.inFlight(blocked); len(list) > 0 {
		fmt.Fprintf(&b, "    other driver calls of the test in flight:\n%s\n", indent(strings.Join(list, "\n"), "        "))
	}
	if w.gid != blocked.gid {
		if st := stackOf(w.gid); st != "" {
			fmt.Fprintf(&b, "    the test goroutine is in:\n%s\n", indent(st, "        "))
		}
	}
	exitBlocked(&b)
}

// inFlight describes the test's driver calls in flight but except, the
// longest running first.
func (w *watchdog) inFlight(except *call) []string {
	now := liveNow()
	type running struct {
		c   *call
		age time.Duration
	}
	var rs []running
	w.mu.Lock()
	for c := range w.calls {
		if since, _, ok := c.running(); ok && c != except {
			rs = append(rs, running{c, now - since})
		}
	}
	w.mu.Unlock()
	sort.Slice(rs, func(i, j int) bool { return rs[i].age > rs[j].age })
	var list []string
	for _, r := range rs {
		s := fmt.Sprintf("%s for %v", r.c.name(), r.age.Round(100*time.Millisecond))
		if r.c.op == "Notifications.Receive" {
			s = fmt.Sprintf("Notifications.Receive, %v after its ctx ended", r.age.Round(100*time.Millisecond))
		}
		if r.c.sql != "" {
			s += " (" + r.c.sql + ")"
		}
		list = append(list, s)
	}
	return list
}

// callHints add to an item's advice what is particular to one call.
var callHints = func() map[string]string {
	const emptyPool = "(a Rows.Close, Commit or Rollback that does not give it back), the pool is empty; see \"rows lifecycle\" and \"transactions\""
	const txEnd = "Commit and Rollback send COMMIT or ROLLBACK on the transaction's connection and return the server's answer; they wait for nothing else"
	return map[string]string{
		"Database.Query":       "a Query on the pool also waits for a free connection: if earlier Rows or Transactions kept theirs " + emptyPool,
		"Database.Exec":        "an Exec on the pool also waits for a free connection: if earlier Rows or Transactions kept theirs " + emptyPool,
		"Database.Begin":       "Begin waits for a free connection of the pool: if earlier Rows or Transactions kept theirs " + emptyPool,
		"Transaction.Commit":   txEnd,
		"Transaction.Rollback": txEnd,
		"Rows.Next":            "Next returns false at the end of every result, an empty one too, and never waits for anything but the server's next message",
		"Rows.Scan":            "Scan converts the current row, already read; it does not wait",
		"Rows.Close":           "Close discards the rest of the result and gives the connection back; it waits for nothing else",
		"Database.Listen":      "Listen waits for the server's answer to each LISTEN and returns: it does not wait for a notification",
		"Notifications.Close":  "Close must not wait for a Receive in progress, nor for the reader of the connection to see one more message: it ends them",
	}
}()

// exitBlocked prints a blocked test's report, with the failures reported
// before, and ends the test binary with status 1.
func exitBlocked(b *strings.Builder) {
	if fs := failuresSoFar(); len(fs) > 0 {
		b.WriteString("    failures reported before:\n")
		for _, f := range fs {
			b.WriteString(indent(f, "        ") + "\n")
		}
	}
	b.WriteString("conformance: ending the test binary, since a blocked goroutine cannot be stopped\n")
	exitProcess(b.String())
}

var exitOnce sync.Once

// exitProcess writes the report and ends the process; when two watchdogs
// fire at once, only the first report is written.
func exitProcess(report string) {
	exitOnce.Do(func() {
		os.Stderr.WriteString(report)
		os.Exit(1)
	})
	select {} // the first report's exit ends this goroutine too
}

// The tracked Database and what it hands out. Each forwards to the driver
// and records the call while it runs.

type trackedDB struct {
	db core.Database
	w  *watchdog
}

// track wraps db so that its calls are watched by w (nil: not watched).
func track(w *watchdog, db core.Database) core.Database {
	if w == nil {
		return db
	}
	return &trackedDB{db: db, w: w}
}

// untracked returns the driver's own Database, for the harness's functions.
func untracked(db core.Database) core.Database {
	if d, ok := db.(*trackedDB); ok {
		return d.db
	}
	return db
}

func (d *trackedDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	c := d.w.begin("Database.Exec", itemCalls, short(sql))
	defer d.w.end(c)
	return d.db.Exec(ctx, sql, args...)
}

func (d *trackedDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	c := d.w.begin("Database.Query", itemCalls, short(sql))
	defer d.w.end(c)
	rows, err := d.db.Query(ctx, sql, args...)
	return trackRows(d.w, rows, sql), err
}

func (d *trackedDB) Begin(ctx context.Context) (core.Transaction, error) {
	c := d.w.begin("Database.Begin", itemCalls, "")
	defer d.w.end(c)
	tx, err := d.db.Begin(ctx)
	if tx == nil {
		return tx, err
	}
	return trackTx(d.w, "Transaction", tx), err
}

func (d *trackedDB) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	c := d.w.begin("Database.Listen", itemListen, "")
	defer d.w.end(c)
	n, err := d.db.Listen(ctx, channels...)
	if n == nil {
		return n, err
	}
	return &trackedNotifications{n: n, w: d.w}, err
}

// trackedExec is a Transaction's (or the caller's transaction's) Exec and
// Query.
type trackedExec struct {
	ex   core.Executor
	w    *watchdog
	kind string // "Transaction", "the caller's transaction"
}

func (x *trackedExec) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	c := x.w.begin(x.kind+".Exec", itemCalls, short(sql))
	defer x.w.end(c)
	return x.ex.Exec(ctx, sql, args...)
}

func (x *trackedExec) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	c := x.w.begin(x.kind+".Query", itemCalls, short(sql))
	defer x.w.end(c)
	rows, err := x.ex.Query(ctx, sql, args...)
	return trackRows(x.w, rows, sql), err
}

// copyExec adds CopyFrom to an executor whose driver value has it, so that
// core takes the same path with and without the tracking.
type copyExec struct {
	core.Executor
	c core.CopyFromer
	x *trackedExec
}

func (x copyExec) CopyFrom(ctx context.Context, schema, table string, columns []string, rows [][]any) (int64, error) {
	c := x.x.w.begin(x.x.kind+".CopyFrom", itemBulk, schema+"."+table)
	defer x.x.w.end(c)
	return x.c.CopyFrom(ctx, schema, table, columns, rows)
}

// trackExecutor wraps the caller's transaction the harness returned.
func trackExecutor(w *watchdog, ex core.Executor) core.Executor {
	if w == nil || ex == nil {
		return ex
	}
	x := &trackedExec{ex: ex, w: w, kind: "the caller's transaction"}
	if c, ok := ex.(core.CopyFromer); ok {
		return copyExec{x, c, x}
	}
	return x
}

type trackedTx struct {
	*trackedExec
	tx core.Transaction
}

func (t trackedTx) Commit(ctx context.Context) error {
	c := t.w.begin("Transaction.Commit", itemTx, "")
	defer t.w.end(c)
	return t.tx.Commit(ctx)
}

func (t trackedTx) Rollback(ctx context.Context) error {
	c := t.w.begin("Transaction.Rollback", itemTx, "")
	defer t.w.end(c)
	return t.tx.Rollback(ctx)
}

type trackedCopyTx struct {
	trackedTx
	c core.CopyFromer
}

func (t trackedCopyTx) CopyFrom(ctx context.Context, schema, table string, columns []string, rows [][]any) (int64, error) {
	c := t.w.begin("Transaction.CopyFrom", itemBulk, schema+"."+table)
	defer t.w.end(c)
	return t.c.CopyFrom(ctx, schema, table, columns, rows)
}

func trackTx(w *watchdog, kind string, tx core.Transaction) core.Transaction {
	t := trackedTx{trackedExec: &trackedExec{ex: tx, w: w, kind: kind}, tx: tx}
	if c, ok := tx.(core.CopyFromer); ok {
		return trackedCopyTx{t, c}
	}
	return t
}

// trackedRows records each of its methods while it runs; it is listed
// among the test's calls from Query until Close.
type trackedRows struct {
	rows core.Rows
	w    *watchdog
	c    *call
}

func trackRows(w *watchdog, rows core.Rows, sql string) core.Rows {
	if rows == nil {
		return rows
	}
	c := &call{op: "Rows", it: itemRows, sql: short(sql), gid: goroutineID()}
	if !w.add(c) {
		return rows
	}
	return &trackedRows{rows: rows, w: w, c: c}
}

func (r *trackedRows) enter(method int) { r.c.mark(liveNow(), method) }

func (r *trackedRows) leave() { r.c.state.Store(0) }

func (r *trackedRows) Next() bool {
	r.enter(rowsNext)
	defer r.leave()
	return r.rows.Next()
}

func (r *trackedRows) Scan(dest ...any) error {
	r.enter(rowsScan)
	defer r.leave()
	return r.rows.Scan(dest...)
}

func (r *trackedRows) Err() error {
	r.enter(rowsErr)
	defer r.leave()
	return r.rows.Err()
}

func (r *trackedRows) Close() error {
	r.enter(rowsClose)
	err := r.rows.Close()
	r.leave()
	r.w.end(r.c)
	return err
}

type trackedNotifications struct {
	n core.Notifications
	w *watchdog
}

// untrackedNotifications returns the driver's own session, for the
// harness's ListenerPIDs.
func untrackedNotifications(n core.Notifications) core.Notifications {
	if t, ok := n.(*trackedNotifications); ok {
		return t.n
	}
	return n
}

func (n *trackedNotifications) Receive(ctx context.Context) (core.Notification, error) {
	_, done := n.w.beginReceive(ctx)
	defer done()
	return n.n.Receive(ctx)
}

func (n *trackedNotifications) Close(ctx context.Context) error {
	c := n.w.begin("Notifications.Close", itemClose, "")
	defer n.w.end(c)
	return n.n.Close(ctx)
}
