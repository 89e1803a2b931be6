package testkit

import (
	"testing"
	"time"
)

// DefaultWait bounds Eventually and Events.Wait: long enough for a loaded
// machine, short enough that a test waiting for what never comes fails in
// one run.
const DefaultWait = 30 * time.Second

// pollEvery is how often Eventually checks its condition.
const pollEvery = 5 * time.Millisecond

// Eventually checks cond until it holds, failing t with what when it still
// does not after DefaultWait.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, DefaultWait, what, cond)
}

// EventuallyWithin checks cond until it holds, failing t with what when it
// still does not after within. It returns how long cond took to hold.
func EventuallyWithin(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for !cond() {
		if time.Since(begin) > within {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		<-ticker.C
	}
	return time.Since(begin)
}
