package conformance

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// A driver call that never returns would otherwise hang the test binary
// until go test's own -timeout (ten minutes by default) and end in a dump
// of every goroutine, with no word about the driver. A pool whose Close
// waits for a connection the driver never gave back (a Rows.Close or a
// Rollback that does nothing) hangs the same way, in the cleanup the
// harness registered, where the suite cannot fail the test any more. So
// each test has a watchdog: if the test body, or one step of its cleanup,
// runs past its bound, the watchdog prints which contract item the test
// checks, what it was waiting for, where the test goroutine is blocked and
// every failure reported so far, and ends the process with status 1. That
// is the only way to stop a goroutine blocked in someone else's code. The
// watchdog also bounds each driver call of the test, whoever makes it, and
// reports a blocked one by name; see inflight.go.

type watchdog struct {
	t   testing.TB
	it  item
	gid string // the test goroutine's id, to find its stack
	// engine is set for the engine tests, whose driver calls core makes;
	// callBound bounds each call (see inflight.go).
	engine    bool
	callBound time.Duration
	mu        sync.Mutex
	timer     *time.Timer
	what      string
	since     time.Time
	calls     map[*call]struct{} // the driver calls in flight
	stopped   bool
}

var watchdogs sync.Map // testing.TB -> *watchdog

// watch starts t's watchdog, bounding the test body by the suite's test
// timeout plus one wait (the body's own context ends at the former, so a
// driver that honours contexts fails the test before).
func (s *suite) watch(t *testing.T) *watchdog {
	w := &watchdog{t: t, it: itemOf(t), gid: goroutineID(), what: "the test", since: time.Now(),
		calls: map[*call]struct{}{}}
	engineBound, contractBound := callBounds(s.lim)
	w.engine = s.enginePrefix != "" && strings.HasPrefix(t.Name(), s.enginePrefix)
	w.callBound = contractBound
	if w.engine {
		w.callBound = engineBound
	}
	w.timer = time.AfterFunc(s.lim.test+s.lim.wait, w.fire)
	watchdogs.Store(t, w)
	startChecker()
	return w
}

func watchOf(t testing.TB) *watchdog {
	if w, ok := watchdogs.Load(t); ok {
		return w.(*watchdog)
	}
	return nil
}

// cleanup says the test's cleanup has reached a step that must end within
// one wait; each step gets a bound of its own.
func (w *watchdog) cleanup(what string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Cleanups the suite does not see (a harness's NewSchema, say) run
	// between the steps it marks: name the step as a lower bound.
	w.what, w.since = "the test's cleanup (at or after: "+what+")", time.Now()
	w.timer.Reset(lim(w.t).wait)
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.mu.Lock()
	w.stopped = true
	clear(w.calls)
	w.mu.Unlock()
	watchdogs.Delete(w.t)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	what, since := w.what, w.since
	w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "--- FAIL: %s (blocked)\n", w.t.Name())
	fmt.Fprintf(&b, "    %s\n", w.it.message(fmt.Sprintf("%s has not returned after %v: a driver call blocked",
		what, time.Since(since).Round(time.Second))))
	if strings.HasPrefix(what, "the test's cleanup") {
		b.WriteString("    a pool waits on Close for every connection it handed out, and dropping a schema for every " +
			"transaction that touched it: the driver kept a connection or a transaction, " +
			"see the items \"rows lifecycle\" (Rows.Close releases its connection) and \"transactions\" " +
			"(Commit and Rollback end the transaction and release theirs)\n")
	}
	if st := stackOf(w.gid); st != "" {
		fmt.Fprintf(&b, "    the test goroutine is blocked in:\n%s\n", indent(st, "        "))
	}
	if list := w.inFlight(nil); len(list) > 0 {
		fmt.Fprintf(&b, "    driver calls of the test in flight:\n%s\n", indent(strings.Join(list, "\n"), "        "))
	}
	exitBlocked(&b)
}

// failures keeps every failure message, for the watchdog's report: when
// it ends the process, go test has not printed them yet.
var failures struct {
	sync.Mutex
	msgs []string
}

func recordFailure(t testing.TB, msg string) {
	failures.Lock()
	defer failures.Unlock()
	if len(failures.msgs) < 40 {
		failures.msgs = append(failures.msgs, t.Name()+": "+msg)
	}
}

func failuresSoFar() []string {
	failures.Lock()
	defer failures.Unlock()
	return append([]string(nil), failures.msgs...)
}

func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf)
	if len(f) < 2 {
		return ""
	}
	return string(f[1])
}

// stackOf returns the first frames of goroutine gid's stack.
func stackOf(gid string) string {
	if gid == "" {
		return ""
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.HasPrefix(g, "goroutine "+gid+" ") {
			lines := strings.Split(g, "\n")
			if len(lines) > 25 {
				lines = append(lines[:25], "...")
			}
			return strings.Join(lines, "\n")
		}
	}
	return ""
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// itemOf is the contract item a test checks, by the test's name.
func itemOf(t testing.TB) item {
	name := t.Name()
	name = name[strings.LastIndex(name, "/")+1:]
	if it, ok := testItems[name]; ok {
		return it
	}
	return itemSetup
}

var testItems = map[string]item{
	"Arguments":                itemArgs,
	"ArgumentsInExec":          itemArgs,
	"ArgumentsInOtherTimeZone": itemArgs,
	"SQLTextUntouched":         itemSQLText,
	"Scan":                     itemScan,
	"ScanNULL":                 itemScanNull,
	"NULLInEveryPosition":      itemNullPositions,
	"ScannedBytesAreCopies":    itemBytesCopied,
	"RowsAffected":             itemRowsAffected,
	"ErrorsExposeSQLState":     itemSQLState,
	"UsableAfterErrors":        itemRecovery,
	"RowsLifecycle":            itemRows,
	"LargeResult":              itemRows,
	"RowsCloseReleases":        itemRows,
	"Transactions":             itemTx,
	"ContextCancellation":      itemCancel,
	"ConcurrentUse":            itemConcurrency,
	"ListenUnsupported":        itemListenUnsupported,
	"ListenDelivers":           itemListen,
	"ListenSubscribedOnReturn": itemListenSubscribed,
	"ReceiveHonoursContext":    itemReceiveCtx,
	"CloseUnblocksReceive":     itemClose,
	"ListenReconnects":         itemReconnect,
	"ListenConcurrentUse":      itemConcurrency,
	"Migrate":                  itemMigrate,
	"MigrateConcurrently":      itemMigrate,
	"OddSchemaName":            itemSQLText,
	"AddJobs":                  itemAdd,
	"KeyedJobs":                itemAdd,
	"AddInCallerTransaction":   itemCallerTx,
	"WorkerCompletesJobs":      itemWorker,
	"FailedJobBacksOff":        itemBackoff,
	"SerialQueue":              itemSerial,
	"ForbiddenFlags":           itemFlags,
	"WorkerWakesUp":            itemWake,
	"Shutdown":                 itemShutdown,
	"DeadWorkerRecovery":       itemRecoverySweep,
	"BulkAddJobs":              itemBulk,
	"InspectAndActions":        itemInspect,
}
