package core

import "time"

// Clock is a worker's source of time: the cron runner reads it and waits on
// its timers, and with UseLocalTime fetches compare run_at with it. The
// zero WorkerOptions.Clock is the system clock; tests put a fake one there
// to move time on deterministically.
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
	// false meaning the timer had already fired or been stopped.
	Stop() bool
}

// systemClock is the Clock of time.Now and time.NewTimer.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }
