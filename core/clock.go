package core

import (
	"context"
	"time"
)

// Clock is a worker's source of time: everything the worker schedules
// waits on its timers and reads its Now. That is:
//
//   - fetching: the poll interval, the backoff after a failed fetch, and
//     the time fetches compare run_at with under UseLocalTime;
//   - the local queue: when each job was fetched, its TTL, and the refetch
//     delay;
//   - LISTEN's reconnection backoff;
//   - outcome recording: CompleteJobBatchDelay and FailJobBatchDelay, the
//     retries while the database is away or refuses an outcome, and how
//     long shutdown keeps trying to record outcomes;
//   - dead-worker recovery: heartbeats and their retries, sweeps, and how
//     long ago the worker last lost the database (which holds sweeps back);
//   - the stale-lock reset;
//   - the cron runner: the minutes it schedules, its timers (including the
//     wait before a failed runner restarts) and CronEvent.Now;
//   - shutdown: GracePeriod, and the second after it that handlers get to
//     return once their contexts are cancelled;
//   - how long jobs ran and outages lasted, as events and logs report them.
//
// The zero WorkerOptions.Clock is the system clock; tests put a fake one
// there to move time on deterministically instead of waiting.
//
// Only three things keep to the system clock: the context deadlines that
// bound single statements, Migrate's wait for another migrator, and the
// database's now(), which run_at is compared with unless UseLocalTime is
// set and which judges heartbeats stale.
//
// A Clock's timers measure elapsed time, as the system's do (they use the
// monotonic clock): when the wall clock is set back or forward, a pending
// timer still fires after its duration, and the cron runner compares Now
// with the minute it was waiting for to notice the jump.
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now. A timer with
	// d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C returns the channel on which the timer delivers the time when it
	// fires. It is buffered, so a timer fires even when nobody waits.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it did so,
	// false meaning the timer had already fired or been stopped. After
	// Stop, C delivers nothing until the timer is Reset.
	Stop() bool
	// Reset makes the timer fire d from now, whether it was pending, had
	// fired or was stopped; a value it delivered before and nobody
	// received is discarded. It reports whether the timer was pending.
	Reset(d time.Duration) bool
}

// systemClock is the Clock of time.Now and time.NewTimer.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// systemTimer relies on the timers of Go 1.23 and later: Stop and Reset
// discard a value not yet received.
type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// stoppedTimer returns a timer of c that is not pending, for a select to
// wait on until it is Reset.
func stoppedTimer(c Clock) Timer {
	t := c.NewTimer(time.Hour)
	t.Stop()
	return t
}

// sleep waits d on c; it reports false when ctx ended first.
func sleep(ctx context.Context, c Clock, d time.Duration) bool {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}
