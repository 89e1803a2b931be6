package testkit_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/testkit"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	testkit.Eventually(t, "the third check", func() bool { return calls.Add(1) >= 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("checked %d times, want 3", n)
	}
}

func TestEventsWaitWakesOnRecord(t *testing.T) {
	t.Parallel()
	var e testkit.Events
	go func() {
		e.Record("other")
		e.Record("x")
		e.Record("x")
	}()
	e.Wait(t, "x", 2)
	if e.Count("x") != 2 || !e.Has("other") || e.Has("y") {
		t.Fatalf("recorded %v", e.Names())
	}
}

func TestEventsAwaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	var e testkit.Events
	e.Record("x")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Await(ctx, "x", 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await of an event recorded once, for two: %v, want the deadline", err)
	}
}

func TestBufferCollectsConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b testkit.Buffer
	done := make(chan struct{})
	for range 2 {
		go func() {
			_, _ = b.Write([]byte("ab"))
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	if got := b.String(); got != "abab" {
		t.Fatalf("got %q", got)
	}
}

func TestGoroutinesKeepsOnlyThoseWithTheFrame(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	go parkedForGoroutinesTest(started, release)
	<-started
	got := testkit.Goroutines("testkit_test.parkedForGoroutinesTest")
	// The parked goroutine, and not this one, which is running.
	if !strings.Contains(got, "parkedForGoroutinesTest") || strings.Contains(got, "[running]") {
		t.Fatalf("Goroutines kept:\n%s", got)
	}
	if testkit.Goroutines("no such frame anywhere") != "" {
		t.Fatal("Goroutines kept stacks without the frame")
	}
}

func parkedForGoroutinesTest(started, release chan struct{}) {
	close(started)
	<-release
}
