// Package backoff is the one wait between retries that gworker's parts
// share: doubling from a first wait, capped, and jittered.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Wait returns the wait after the given number of failures: first doubled
// failures times (0: first itself), capped at max, then drawn from the
// upper half of that range so that processes retrying together spread out.
func Wait(failures int, first, max time.Duration) time.Duration {
	d := first
	for i := 0; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}
