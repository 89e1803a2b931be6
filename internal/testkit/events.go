package testkit

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Events records named events, such as the names of the events a worker
// reports through its hooks, so that a test can wait for one instead of
// reading log text. The zero value is ready to use; it is safe for
// concurrent use.
type Events struct {
	mu      sync.Mutex
	names   []string
	changed chan struct{} // closed and replaced by each Record
}

// Record adds an event named name and wakes every Wait.
func (e *Events) Record(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.names = append(e.names, name)
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
}

// Count returns how many events named name were recorded.
func (e *Events) Count(name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, got := range e.names {
		if got == name {
			n++
		}
	}
	return n
}

// Has reports whether an event named name was recorded.
func (e *Events) Has(name string) bool { return e.Count(name) > 0 }

// Names returns the recorded events' names in order.
func (e *Events) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.names)
}

// Wait waits until n events named name were recorded, failing t when they
// were not after DefaultWait.
func (e *Events) Wait(t testing.TB, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultWait)
	defer cancel()
	if e.Await(ctx, name, n) != nil {
		t.Fatalf("timed out after %v waiting for %d %q event(s); got %d; recorded: %s",
			DefaultWait, n, name, e.Count(name), strings.Join(e.Names(), ", "))
	}
}

// Await waits until n events named name were recorded, or returns ctx's
// error when ctx ends first. It is Wait for code without a testing.TB, such
// as a helper process.
func (e *Events) Await(ctx context.Context, name string, n int) error {
	for {
		e.mu.Lock()
		got := 0
		for _, r := range e.names {
			if r == name {
				got++
			}
		}
		if got >= n {
			e.mu.Unlock()
			return nil
		}
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
