// Package clocktest provides a fake core.Clock whose time moves only when a
// test says so, for testing what a worker schedules (cron minutes, the
// local queue's TTL, batch delays, retries, polls, heartbeats and sweeps)
// without sleeping.
//
// Like the system clock it keeps two times: the wall clock, which Now
// returns and Set may step backwards or forwards (as NTP or an operator
// would), and the elapsed time timers are measured on, which only Advance
// moves on. Advance moves both together and fires every timer it reaches,
// in order.
//
// Tests synchronise with the code under test through its timers. A worker
// keeps several pending at once (the poll, the heartbeat, the sweep, ...),
// so counting them says little: Timers reports each pending timer with the
// code that armed it, and WaitUntil waits until the timers a test cares
// about are there. After Advance has fired the timer a goroutine waited
// on, that goroutine has done its work once it waits on a new one.
//
//	clock := clocktest.New(time.Date(2024, 1, 2, 3, 4, 30, 0, time.UTC))
//	// ... start a worker with WorkerOptions.Clock = clock ...
//	cron := func(ts []clocktest.PendingTimer) bool {
//		return slices.ContainsFunc(ts, func(t clocktest.PendingTimer) bool { return t.ArmedIn("(*cronRunner)") })
//	}
//	clock.WaitUntil(ctx, cron) // the runner waits for 03:05
//	clock.AdvanceTo(time.Date(2024, 1, 2, 3, 5, 0, 0, time.UTC))
//	clock.WaitUntil(ctx, cron) // 03:05 is done; it waits for 03:06
package clocktest

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gworker/gworker/core"
)

// Clock is a fake core.Clock. Its zero value is not usable; call New.
type Clock struct {
	mu      sync.Mutex
	wall    time.Time
	elapsed time.Duration // since New; timers' deadlines are on this scale
	pending []*timer      // sorted by deadline, then creation
	changed chan struct{} // closed and replaced whenever pending changes
}

var _ core.Clock = (*Clock)(nil)

// New returns a clock whose wall clock reads start.
func New(start time.Time) *Clock {
	return &Clock{wall: start, changed: make(chan struct{})}
}

// Now returns the wall-clock time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// NewTimer returns a timer that fires when Advance has moved time on by d.
// With d <= 0 it fires at once.
func (c *Clock) NewTimer(d time.Duration) core.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.armedBy = callers()
	c.schedule(t, d)
	return t
}

// callers returns the stack of the code that called NewTimer or Reset.
func callers() []uintptr {
	pc := make([]uintptr, 32)
	return pc[:runtime.Callers(3, pc)]
}

// schedule makes t fire d from now; c.mu is held and t is not pending.
func (c *Clock) schedule(t *timer, d time.Duration) {
	t.deadline = c.elapsed + d
	if d <= 0 {
		t.ch <- c.wall
		return
	}
	i, _ := slices.BinarySearchFunc(c.pending, t.deadline, func(p *timer, d time.Duration) int {
		if p.deadline <= d {
			return -1
		}
		return 1
	})
	c.pending = slices.Insert(c.pending, i, t)
	c.notify()
}

// Advance moves the wall clock and elapsed time on by d, firing every timer
// whose deadline it reaches, in deadline order, each with the wall-clock
// time of its deadline.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("clocktest: Advance with a negative duration; use Set to step the wall clock back")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.elapsed + d
	fired := false
	for len(c.pending) > 0 && c.pending[0].deadline <= end {
		t := c.pending[0]
		c.pending = c.pending[1:]
		c.wall = c.wall.Add(t.deadline - c.elapsed)
		c.elapsed = t.deadline
		t.ch <- c.wall
		fired = true
	}
	c.wall = c.wall.Add(end - c.elapsed)
	c.elapsed = end
	if fired {
		c.notify()
	}
}

// AdvanceTo advances until the wall clock reads t; it does nothing when the
// wall clock is already at or past t.
func (c *Clock) AdvanceTo(t time.Time) {
	if d := t.Sub(c.Now()); d > 0 {
		c.Advance(d)
	}
}

// Set steps the wall clock to t, backwards or forwards, without moving
// elapsed time: no timer fires, as when the system clock is set.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = t
	c.notify() // the wall-clock times of the timers moved
}

// PendingTimer is a timer waiting to fire, as Timers reports it.
type PendingTimer struct {
	// At is the wall-clock time at which it fires, if the wall clock is
	// not set meanwhile.
	At      time.Time
	armedBy []uintptr
}

// ArmedIn reports whether the timer was created, or last reset, by code
// running in a function whose name contains name, as the runtime spells
// it: "(*cronRunner)" for the methods of core's cron runner, say. Tests
// tell a worker's timers apart by it.
func (p PendingTimer) ArmedIn(name string) bool {
	frames := runtime.CallersFrames(p.armedBy)
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, name) {
			return true
		}
		if !more {
			return false
		}
	}
}

// Timers returns the pending timers, the earliest first.
func (c *Clock) Timers() []PendingTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timers()
}

// timers lists the pending timers; c.mu is held.
func (c *Clock) timers() []PendingTimer {
	out := make([]PendingTimer, len(c.pending))
	for i, t := range c.pending {
		out[i] = PendingTimer{At: c.wall.Add(t.deadline - c.elapsed), armedBy: t.armedBy}
	}
	return out
}

// WaitUntil blocks until cond reports true for the pending timers (as
// Timers returns them), or ctx is done. It asks cond again whenever a timer
// is armed, stopped or fired.
func (c *Clock) WaitUntil(ctx context.Context, cond func([]PendingTimer) bool) error {
	for {
		c.mu.Lock()
		ts, ch := c.timers(), c.changed
		c.mu.Unlock()
		if cond(ts) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes WaitUntil; c.mu is held.
func (c *Clock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c        *Clock
	deadline time.Duration
	ch       chan time.Time
	armedBy  []uintptr // the stack of the NewTimer or Reset that armed it
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return t.unschedule()
}

// Reset makes the timer fire when Advance has moved time on by d from now,
// discarding a value it delivered that nobody received.
func (t *timer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pending := t.unschedule()
	t.armedBy = callers()
	c.schedule(t, d)
	return pending
}

// unschedule removes t from the pending timers and empties its channel, as
// the system's timers do; c.mu is held.
func (t *timer) unschedule() bool {
	c := t.c
	select {
	case <-t.ch:
	default:
	}
	i := slices.Index(c.pending, t)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	c.notify()
	return true
}
