package clocktest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/clocktest"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestAdvanceFiresTimersInOrderAtTheirDeadlines(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	late, early, zero := c.NewTimer(2*time.Second), c.NewTimer(time.Second), c.NewTimer(0)
	if at, ok := fired(zero.C()); !ok || !at.Equal(t0) {
		t.Fatalf("a zero timer did not fire at once: %v %v", at, ok)
	}
	if ts := c.Timers(); len(ts) != 2 || !ts[0].At.Equal(t0.Add(time.Second)) || !ts[1].At.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("Timers = %+v, want two, at +1s and +2s", ts)
	}
	c.Advance(1500 * time.Millisecond)
	if at, ok := fired(early.C()); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("early timer: %v %v, want fired at +1s", at, ok)
	}
	if _, ok := fired(late.C()); ok {
		t.Error("late timer fired too soon")
	}
	if now := c.Now(); !now.Equal(t0.Add(1500 * time.Millisecond)) {
		t.Errorf("Now = %v", now)
	}
	c.AdvanceTo(t0.Add(2 * time.Second))
	if at, ok := fired(late.C()); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("late timer: %v %v, want fired at +2s", at, ok)
	}
	if ts := c.Timers(); len(ts) != 0 {
		t.Errorf("Timers = %+v after every timer fired", ts)
	}
}

func TestSetMovesTheWallClockOnly(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	tm := c.NewTimer(time.Minute)
	c.Set(t0.Add(-time.Hour))
	if _, ok := fired(tm.C()); ok {
		t.Fatal("Set fired a timer")
	}
	if ts := c.Timers(); len(ts) != 1 || !ts[0].At.Equal(t0.Add(-time.Hour+time.Minute)) {
		t.Fatalf("Timers = %+v after Set, want one at the new wall clock's %v", ts, t0.Add(-time.Hour+time.Minute))
	}
	c.Advance(time.Minute)
	if at, ok := fired(tm.C()); !ok || !at.Equal(t0.Add(-time.Hour+time.Minute)) {
		t.Errorf("timer fired %v at %v; want after one minute of elapsed time, at the wall clock's %v", ok, at, t0.Add(-time.Hour+time.Minute))
	}
}

// armMinute and armSecond arm timers from functions of their own, for
// ArmedIn to tell apart.
func armMinute(c *clocktest.Clock) { c.NewTimer(time.Minute) }

func armSecond(c *clocktest.Clock) { c.NewTimer(time.Second) }

func TestStopAndWaitUntilATimerOfOneCaller(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() || tm.Stop() {
		t.Error("Stop should report true once")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The condition reports each answer it gives, and gives it only once
	// the test has received it: the test knows each time WaitUntil asks,
	// and what it heard.
	answers := make(chan bool)
	armedInMinute := func(ts []clocktest.PendingTimer) bool {
		ok := slices.ContainsFunc(ts, func(p clocktest.PendingTimer) bool { return p.ArmedIn("clocktest_test.armMinute") })
		select {
		case answers <- ok:
		case <-ctx.Done():
		}
		return ok
	}
	done := make(chan error, 1)
	go func() { done <- c.WaitUntil(ctx, armedInMinute) }()
	// expect waits for WaitUntil's next question and checks its answer;
	// WaitUntil returning instead fails the test.
	expect := func(step string, want bool) {
		t.Helper()
		select {
		case got := <-answers:
			if got != want {
				t.Fatalf("%s: the condition answered %v, want %v", step, got, want)
			}
		case err := <-done:
			t.Fatalf("%s: WaitUntil returned (%v) while its condition was false", step, err)
		case <-ctx.Done():
			t.Fatalf("%s: WaitUntil did not ask its condition again", step)
		}
	}
	expect("at first, with no timer", false)
	// Another caller's timer wakes WaitUntil, which must ask again and,
	// hearing false, go on waiting.
	armSecond(c)
	expect("after armSecond's timer", false)
	// Only now, with WaitUntil seen waiting, does the condition come true.
	armMinute(c)
	expect("after armMinute's timer", true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ts := c.Timers()
	if len(ts) != 2 || !ts[0].ArmedIn("armSecond") || ts[0].ArmedIn("armMinute") || !ts[1].ArmedIn("armMinute") {
		t.Errorf("Timers = %+v, want armSecond's, then armMinute's", ts)
	}
	cancelled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if err := c.WaitUntil(cancelled, func(ts []clocktest.PendingTimer) bool { return len(ts) > 2 }); err == nil {
		t.Error("WaitUntil returned nil on a cancelled context with its condition false")
	}
}

func TestResetDiscardsAnUnreceivedValueAndReschedules(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	tm := c.NewTimer(time.Second)
	c.Advance(time.Second) // fires; nobody receives
	if tm.Reset(time.Minute) {
		t.Error("Reset of a fired timer reported it pending")
	}
	if _, ok := fired(tm.C()); ok {
		t.Fatal("the value delivered before Reset was still received")
	}
	if !tm.Reset(2 * time.Second) {
		t.Error("Reset of a pending timer reported it not pending")
	}
	if n := len(c.Timers()); n != 1 {
		t.Fatalf("%d pending timers after two resets, want 1", n)
	}
	c.Advance(2 * time.Second)
	if at, ok := fired(tm.C()); !ok || !at.Equal(t0.Add(3*time.Second)) {
		t.Errorf("reset timer: %v %v, want fired at +3s", at, ok)
	}
}
