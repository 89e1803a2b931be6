package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func testWatchdog(t *testing.T, bound time.Duration) *watchdog {
	w := &watchdog{t: t, calls: map[*call]struct{}{}, callBound: bound, timer: time.AfterFunc(time.Hour, func() {})}
	t.Cleanup(w.stop)
	return w
}

// startedAt marks c as running since live time start.
func startedAt(c *call, start time.Duration) { c.mark(start, 0) }

func TestBlockedCallPastTheBound(t *testing.T) {
	w := testWatchdog(t, 5*time.Second)
	exec := &call{op: "Database.Exec", it: itemCalls}
	slow := &call{op: "Database.Query", it: itemCalls}
	w.add(exec)
	w.add(slow)
	startedAt(exec, 10*time.Second)
	startedAt(slow, 12*time.Second)
	if c, _ := w.blockedCall(15 * time.Second); c != nil {
		t.Errorf("a call running exactly the bound is reported as blocked: %s", c.name())
	}
	c, age := w.blockedCall(17*time.Second + time.Millisecond)
	if c != exec || age != 7*time.Second+time.Millisecond {
		t.Errorf("blockedCall gives %v after %v, want the Exec (the longest running) after 7.001s", c, age)
	}
	w.end(exec)
	w.end(slow)
	if c, _ := w.blockedCall(time.Hour); c != nil {
		t.Errorf("a call that ended is reported as blocked: %s", c.name())
	}
}

func TestReceiveBlockedOnlyAfterItsContextEnded(t *testing.T) {
	w := testWatchdog(t, 5*time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	recv, done := w.beginReceive(ctx)
	defer done()
	if c, _ := w.blockedCall(liveNow() + time.Hour); c != nil {
		t.Fatalf("a Receive whose ctx is live is reported as blocked")
	}
	cancel()
	// The ctx's AfterFunc marks the call from a goroutine of its own.
	deadline := time.Now().Add(10 * time.Second)
	for _, _, ok := recv.running(); !ok; _, _, ok = recv.running() {
		if time.Now().After(deadline) {
			t.Fatal("the Receive was not marked running 10s after its ctx ended")
		}
		time.Sleep(time.Millisecond)
	}
	ended, _, _ := recv.running()
	if c, _ := w.blockedCall(ended + 5*time.Second); c != nil {
		t.Errorf("a Receive is reported as blocked within the bound after its ctx ended")
	}
	if c, _ := w.blockedCall(ended + 5*time.Second + time.Millisecond); c != recv || c.name() != "Notifications.Receive" {
		t.Errorf("a Receive past the bound after its ctx ended is not reported")
	}
}

func TestRowsRunOnlyWithinTheirMethods(t *testing.T) {
	w := testWatchdog(t, 5*time.Second)
	r := &trackedRows{w: w, c: &call{op: "Rows", it: itemRows}}
	w.add(r.c)
	if c, _ := w.blockedCall(liveNow() + time.Hour); c != nil {
		t.Fatalf("open Rows between calls are reported as blocked")
	}
	r.enter(rowsNext)
	c, _ := w.blockedCall(liveNow() + 5*time.Second + time.Millisecond)
	if c != r.c || c.name() != "Rows.Next" || c.it.name != itemRows.name {
		t.Errorf("a Next past the bound is not reported as Rows.Next under %q", itemRows.name)
	}
	r.leave()
	if c, _ := w.blockedCall(liveNow() + time.Hour); c != nil {
		t.Errorf("Rows after Next returned are reported as blocked")
	}
}

func TestStoppedWatchdogRecordsNothing(t *testing.T) {
	w := testWatchdog(t, time.Second)
	c := w.begin("Database.Exec", itemCalls, "select 1")
	w.stop()
	if c2 := w.begin("Database.Exec", itemCalls, "select 1"); c2 != nil {
		t.Error("a stopped watchdog recorded a call")
	}
	w.end(c)
	if c, _ := w.blockedCall(time.Hour); c != nil {
		t.Error("a stopped watchdog reports a blocked call")
	}
}

func TestLiveClockSkipsStalls(t *testing.T) {
	if got := liveStep(checkEvery); got != checkEvery {
		t.Errorf("liveStep(%v) = %v, want all of it", checkEvery, got)
	}
	if got := liveStep(30 * time.Second); got != maxLiveStep {
		t.Errorf("liveStep(30s), a process that did not run for 30s, = %v, want %v", got, maxLiveStep)
	}
}

func TestCallBounds(t *testing.T) {
	for _, c := range []struct {
		timeout, engine, contract time.Duration
	}{
		{0, 5 * time.Second, 35 * time.Second},
		{5 * time.Second, 5 * time.Second, 15 * time.Second},
		{60 * time.Second, 20 * time.Second, 125 * time.Second},
	} {
		engine, contract := callBounds(newLimits(Harness{Timeout: c.timeout}))
		if engine != c.engine || contract != c.contract {
			t.Errorf("Timeout %v: call bounds %v (engine) and %v (contract), want %v and %v", c.timeout, engine, contract, c.engine, c.contract)
		}
	}
}

// The tracked wrappers keep core's optional interface: a Transaction that
// can COPY still can, one that cannot still cannot.
func TestTrackedTransactionKeepsCopyFrom(t *testing.T) {
	w := testWatchdog(t, time.Second)
	if _, ok := trackTx(w, "Transaction", copyTx{}).(core.CopyFromer); !ok {
		t.Error("a tracked Transaction whose driver value has CopyFrom lost it")
	}
	if _, ok := trackTx(w, "Transaction", plainTx{}).(core.CopyFromer); ok {
		t.Error("a tracked Transaction whose driver value lacks CopyFrom has it")
	}
	if _, ok := trackExecutor(w, copyTx{}).(core.CopyFromer); !ok {
		t.Error("a tracked caller's transaction whose driver value has CopyFrom lost it")
	}
	n, err := trackTx(w, "Transaction", copyTx{}).(core.CopyFromer).CopyFrom(t.Context(), "s", "t", nil, nil)
	if n != 7 || err != nil {
		t.Errorf("CopyFrom through the tracking gives %d, %v; want the driver's 7, nil", n, err)
	}
}

type plainTx struct{}

func (plainTx) Exec(context.Context, string, ...any) (int64, error)      { return 0, nil }
func (plainTx) Query(context.Context, string, ...any) (core.Rows, error) { return nil, nil }
func (plainTx) Commit(context.Context) error                             { return nil }
func (plainTx) Rollback(context.Context) error                           { return nil }

type copyTx struct{ plainTx }

func (copyTx) CopyFrom(context.Context, string, string, []string, [][]any) (int64, error) {
	return 7, nil
}
