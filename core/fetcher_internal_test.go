package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

type fetcherBundle struct {
	f         *fetcher
	completer *completer
	events    []LocalQueueEvent
}

// newTestFetcher returns a fetcher whose timers are started and whose
// fetches are never run: the tests drive its decisions.
func newTestFetcher(t *testing.T, o WorkerOptions) *fetcherBundle {
	t.Helper()
	o.Database = fakeDatabase{}
	o.Tasks = []Task{RawTask("t", func(context.Context, *Job) error { return nil })}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w := &Worker{opts: o, log: o.Logger}
	var err error
	if w.opts, err = o.normalize(); err != nil {
		t.Fatal(err)
	}
	b := &fetcherBundle{}
	b.completer = newCompleter(w, func(int, int, int) {})
	b.f = newFetcher(w, b.completer, func() map[int64]bool { return map[int64]bool{} },
		func(e LocalQueueEvent) { b.events = append(b.events, e) })
	b.f.startTimers()
	t.Cleanup(b.f.stopTimers)
	return b
}

// fakeDatabase satisfies Database for options that only check it is set.
type fakeDatabase struct{ Database }

func jobs(n int) []*Job {
	js := make([]*Job, n)
	for i := range js {
		js[i] = &Job{ID: int64(i + 1)}
	}
	return js
}

func TestFetcherAsksForFreeSlotsWithoutALocalQueue(t *testing.T) {
	f := newTestFetcher(t, WorkerOptions{Concurrency: 4}).f
	if n := f.next(1, 0); n != 3 {
		t.Fatalf("with 1 of 4 slots busy it asks for %d, want 3", n)
	}
	f.fetching = true
	if n := f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d while a fetch runs, want 0", n)
	}
	f.done(fetchResult{n: 3, jobs: jobs(3)})
	if short := f.counted(fetchResult{n: 3, jobs: jobs(3)}); short {
		t.Fatal("a full fetch counted as short")
	}
	if n := f.next(0, 0); n != 1 {
		t.Fatalf("after getting 3 of 4 it asks for %d, want the 1 left", n)
	}
	// A short fetch: nothing more is worth asking for until a wake-up.
	f.fetching = true
	f.woken(2) // announced while the fetch ran
	f.done(fetchResult{n: 1})
	if short := f.counted(fetchResult{n: 1}); !short {
		t.Fatal("an empty fetch did not count as short")
	}
	if n := f.next(0, 0); n != 2 {
		t.Fatalf("after a short fetch it asks for %d, want the 2 announced meanwhile", n)
	}
}

func TestFetcherWithALocalQueueFetchesTheFullSizeAtHalf(t *testing.T) {
	f := newTestFetcher(t, WorkerOptions{Concurrency: 2, LocalQueue: LocalQueueOptions{Size: 10}}).f
	if n := f.next(2, 6); n != 0 {
		t.Fatalf("with 6 of 10 waiting it asks for %d, want 0", n)
	}
	if n := f.next(2, 5); n != 10 {
		t.Fatalf("with 5 of 10 waiting it asks for %d, want 10", n)
	}
}

func TestFetcherWaitsForOutcomesToBeRecorded(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 1})
	for range b.f.backlogLimit {
		b.completer.add(outcome{job: &Job{}})
	}
	if n := b.f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d with %d outcomes unrecorded, want 0", n, b.f.backlogLimit)
	}
	b.completer.take(time.Now())
	b.completer.putBack(nil)
	b.completer.failing = true
	if n := b.f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d while outcomes wait for the database, want 0", n)
	}
}

func TestFetcherAfterAFailureReconcilesOnceOutcomesAreRecorded(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 2})
	f := b.f
	f.fetching = true
	if f.done(fetchResult{n: 2, ran: true, err: errors.New("connection reset")}) {
		t.Fatal("a failed fetch was taken as done")
	}
	if !f.reconcile {
		t.Fatal("a fetch that ran and failed does not look for the jobs it may have locked")
	}
	if n := f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d right after a failure, want 0 until polled", n)
	}
	f.polled()
	b.completer.add(outcome{job: &Job{}})
	if n := f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d while an outcome waits, want 0: reconciling needs all recorded", n)
	}
	b.completer.take(time.Now())
	b.completer.putBack(nil)
	if n := f.next(0, 0); n != 2 {
		t.Fatalf("asks for %d once outcomes are recorded, want 2", n)
	}
	f.done(fetchResult{n: 2, reconciled: true})
	if f.reconcile {
		t.Fatal("still reconciling after a fetch that reconciled")
	}
}

func TestFetcherRefetchDelayHoldsBackUntilEnoughJobsAreAnnounced(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 1, PollInterval: time.Hour, LocalQueue: LocalQueueOptions{Size: 4,
		RefetchDelay: RefetchDelayOptions{Duration: time.Hour, Threshold: 1, MaxAbortThreshold: 2}}})
	f := b.f
	f.maybeDelay(2)
	if f.delaying {
		t.Fatal("a fetch above the threshold started a delay")
	}
	f.maybeDelay(1)
	if !f.delaying || len(b.events) != 1 || b.events[0].Change != RefetchDelayStarted {
		t.Fatalf("delaying %v, events %+v; want a delay started", f.delaying, b.events)
	}
	if n := f.next(0, 0); n != 0 {
		t.Fatalf("asks for %d during the delay, want 0", n)
	}
	f.woken(3) // more than any abort threshold up to 2
	if f.delaying || b.events[len(b.events)-1].Change != RefetchDelayAborted {
		t.Fatalf("delaying %v, events %+v; want the delay aborted", f.delaying, b.events)
	}
	if n := f.next(0, 0); n != 4 {
		t.Fatalf("asks for %d after the delay, want the full size 4", n)
	}
}
