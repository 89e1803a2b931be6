package backoff

import (
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	for _, tt := range []struct {
		failures   int
		first, max time.Duration
		want       time.Duration // the range's top; the wait is in [want/2, want]
	}{
		{-1, 100 * time.Millisecond, time.Minute, 100 * time.Millisecond},
		{0, 100 * time.Millisecond, time.Minute, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, time.Minute, 200 * time.Millisecond},
		{4, 200 * time.Millisecond, 5 * time.Second, 3200 * time.Millisecond},
		{5, 200 * time.Millisecond, 5 * time.Second, 5 * time.Second},
		{1000, 100 * time.Millisecond, 10 * time.Second, 10 * time.Second},
		{3, time.Second, 2 * time.Second, 2 * time.Second},
		{100, time.Minute, time.Hour, time.Hour},
	} {
		for range 200 {
			if got := Wait(tt.failures, tt.first, tt.max); got < tt.want/2 || got > tt.want {
				t.Fatalf("Wait(%d, %v, %v) = %v, want within [%v, %v]", tt.failures, tt.first, tt.max, got, tt.want/2, tt.want)
			}
		}
	}
}
