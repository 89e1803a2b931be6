package testkit_test

import (
	"context"
	"errors"
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
