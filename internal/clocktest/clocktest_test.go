package clocktest_test

import (
	"context"
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
	if n := c.PendingTimers(); n != 2 {
		t.Fatalf("%d pending timers, want 2", n)
	}
	if next, ok := c.NextTimer(); !ok || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("NextTimer = %v, %v", next, ok)
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
	if !c.AdvanceToNextTimer() {
		t.Fatal("no timer to advance to")
	}
	if at, ok := fired(late.C()); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("late timer: %v %v, want fired at +2s", at, ok)
	}
	if c.AdvanceToNextTimer() {
		t.Error("AdvanceToNextTimer with no timer pending")
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
	c.Advance(time.Minute)
	if at, ok := fired(tm.C()); !ok || !at.Equal(t0.Add(-time.Hour+time.Minute)) {
		t.Errorf("timer fired %v at %v; want after one minute of elapsed time, at the wall clock's %v", ok, at, t0.Add(-time.Hour+time.Minute))
	}
}

func TestStopAndWaitForTimers(t *testing.T) {
	t.Parallel()
	c := clocktest.New(t0)
	tm := c.NewTimer(time.Second)
	if !tm.Stop() || tm.Stop() {
		t.Error("Stop should report true once")
	}
	done := make(chan error, 1)
	go func() { done <- c.WaitForTimers(context.Background(), 1) }()
	c.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.WaitForTimers(ctx, 2); err == nil {
		t.Error("WaitForTimers returned nil on a cancelled context with too few timers")
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
	if n := c.PendingTimers(); n != 1 {
		t.Fatalf("%d pending timers after two resets, want 1", n)
	}
	c.Advance(2 * time.Second)
	if at, ok := fired(tm.C()); !ok || !at.Equal(t0.Add(3*time.Second)) {
		t.Errorf("reset timer: %v %v, want fired at +3s", at, ok)
	}
}
