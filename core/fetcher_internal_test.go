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
	// localQueue is what the fetcher last told the wake-ups.
	localQueue bool
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
		func(e LocalQueueEvent) { b.events = append(b.events, e) }, func(on bool) { b.localQueue = on })
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
	f := newTestFetcher(t, WorkerOptions{Concurrency: 4, LocalQueue: LocalQueueOptions{Disabled: true}}).f
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

// fetched plays one fetch that asked for asked jobs and got got, during
// which finished jobs finished and, with starved, a slot waited with the
// local queue empty.
func (b *fetcherBundle) fetched(asked, got, finished int, starved bool) {
	f := b.f
	f.fetching, f.finishedDuring, f.starved = true, 0, false
	for range finished {
		f.finished()
	}
	if starved {
		f.slotsIdle()
	}
	res := fetchResult{n: asked, jobs: jobs(got)}
	f.done(res)
	f.counted(res)
}

func TestAdaptiveLocalQueueGrowsUnderLoadAndShrinksAway(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 4})
	f := b.f
	// It starts with no batch: it asks for the free slots only.
	if n := f.next(1, 0); n != 3 || b.localQueue {
		t.Fatalf("at first it asks for %d with local queue %v, want 3 for the free slots and no local queue", n, b.localQueue)
	}
	// A full fetch while a job finished: a slot waited for it. The batch
	// starts at the concurrency, and it fetches ahead.
	b.fetched(3, 3, 1, false)
	if f.batch != 4 || !b.localQueue {
		t.Fatalf("after a full fetch during which a job finished: batch %d, local queue %v; want 4, on", f.batch, b.localQueue)
	}
	if n := f.next(4, 2); n != 4 {
		t.Fatalf("with the local queue down to half it asks for %d, want the batch of 4", n)
	}
	// Full fetches while slots starved double it, up to the cap.
	want := []int{8, 16, 32, 64, 128, 256, 512, 1000, 1000}
	for i, w := range want {
		b.fetched(f.want(), f.want(), f.want(), true)
		if f.batch != w {
			t.Fatalf("after %d starved full fetches: batch %d, want %d", i+1, f.batch, w)
		}
	}
	// Slots that still starve at the cap: the next fetch starts with a
	// whole batch still waiting.
	if n := f.next(4, 1000); n != 1000 {
		t.Fatalf("at the cap, after starved fetches, with a batch waiting it asks for %d, want 1000", n)
	}
	if n := f.next(4, 1001); n != 0 {
		t.Fatalf("with more than a batch waiting it asks for %d, want 0", n)
	}
	// A full fetch with no starved slot keeps it.
	b.fetched(f.want(), f.want(), 10, false)
	if f.batch != 1000 {
		t.Fatalf("a full fetch whose jobs kept slots busy changed the batch to %d", f.batch)
	}
	// Short fetches halve it; below the concurrency it goes away, and the
	// wake-ups count as without a local queue again.
	for _, w := range []int{500, 250, 125, 62, 31, 15, 7, 0} {
		b.fetched(f.want(), 1, 5, true)
		if f.batch != w {
			t.Fatalf("after a short fetch: batch %d, want %d", f.batch, w)
		}
		if w > 0 && f.lowWater != w/2 {
			t.Fatalf("batch %d fetches ahead at %d waiting, want half of it", w, f.lowWater)
		}
	}
	if b.localQueue || f.localQueue() {
		t.Fatal("the local queue stayed on after its batch shrank away")
	}
}

func TestAdaptiveLocalQueueShrinksWhenJobsAreSlow(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 8})
	f := b.f
	b.fetched(8, 8, 2, false)
	b.fetched(8, 8, 8, true)
	if f.batch != 16 {
		t.Fatalf("batch %d after growing twice, want 16", f.batch)
	}
	// Nothing finished while the fetch ran: slow jobs need no batch.
	b.fetched(16, 16, 0, false)
	if f.batch != 8 {
		t.Fatalf("batch %d after a fetch during which nothing finished, want 8", f.batch)
	}
	b.fetched(8, 8, 0, false)
	if f.batch != 0 || b.localQueue {
		t.Fatalf("batch %d, local queue %v after another; want none", f.batch, b.localQueue)
	}
	// Without a batch, a full fetch during which nothing finished keeps it
	// so: a worker with slow jobs locks none that no slot is free for.
	b.fetched(3, 3, 0, false)
	if f.batch != 0 {
		t.Fatalf("batch %d after a full fetch for free slots during which nothing finished, want none", f.batch)
	}
}

func TestFixedLocalQueueSizeDoesNotAdapt(t *testing.T) {
	b := newTestFetcher(t, WorkerOptions{Concurrency: 2, LocalQueue: LocalQueueOptions{Size: 10}})
	b.fetched(10, 10, 10, true)
	b.fetched(10, 1, 0, false)
	if b.f.want() != 10 || !b.localQueue {
		t.Fatalf("a fixed local queue of 10 asks for %d (local queue %v) after full and short fetches", b.f.want(), b.localQueue)
	}
}

// A fetch carries the completions of jobs without a named queue, not those
// of queued jobs, nor failures; a failed ride hands them back in front, and
// a recorded one counts as a flush that frees their slots.
func TestCompleterHandsCompletionsToAFetch(t *testing.T) {
	var freed []int
	b := newTestFetcher(t, WorkerOptions{Concurrency: 4})
	c := b.completer
	c.onFlush = func(f, _, _ int) { freed = append(freed, f) }
	queue := int32(7)
	plain, queued, failed := &Job{ID: 1}, &Job{ID: 2, jobQueueID: &queue}, &Job{ID: 3}
	c.add(outcome{job: plain, kind: outcomeComplete})
	c.add(outcome{job: queued, kind: outcomeComplete})
	c.add(outcome{job: failed, kind: outcomeFail, message: "x"})
	taken := c.takeRides()
	if len(taken) != 1 || taken[0].job != plain {
		t.Fatalf("a fetch took %v, want the completion of job 1 only", taken)
	}
	if c.idle() || c.backlog() != 2 {
		t.Fatalf("idle %v, backlog %d while a fetch carries one completion; want not idle, 2 left", c.idle(), c.backlog())
	}
	c.rode(taken, errors.New("connection lost"))
	if c.backlog() != 3 || c.pending[0].job != plain {
		t.Fatalf("after a failed ride: backlog %d, first %d; want 3 with job 1 first", c.backlog(), c.pending[0].job.ID)
	}
	taken = c.takeRides()
	c.rode(taken, nil)
	if len(freed) != 1 || freed[0] != 1 || c.flushes.Load() != 1 {
		t.Fatalf("a recorded ride freed %v in %d flushes, want one flush freeing 1 slot", freed, c.flushes.Load())
	}
	// With a batch delay the completer gathers completions itself.
	d := newTestFetcher(t, WorkerOptions{Concurrency: 4, CompleteJobBatchDelay: time.Second}).completer
	d.add(outcome{job: plain, kind: outcomeComplete})
	if got := d.takeRides(); got != nil {
		t.Fatalf("with CompleteJobBatchDelay a fetch took %v", got)
	}
}
