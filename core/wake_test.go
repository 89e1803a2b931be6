package core

import "testing"

// After a flush the loop always looks again; it counts the jobs as slots
// worth fetching for only where a fetch can find something the worker was
// not told of.
func TestFlushedWakesForFreedSlotsOrQueues(t *testing.T) {
	cases := []struct {
		name     string
		lq       int
		once     bool
		wantWake int
	}{
		{"no local queue (or an adaptive one without a batch yet): every freed slot", 0, false, 3},
		{"local queue: only freed named queues", 10, false, 1},
		{"local queue, RunOnce: every job, to know when it is done", 10, true, 3},
	}
	for _, c := range cases {
		w := &Worker{opts: WorkerOptions{Concurrency: 4, LocalQueue: LocalQueueOptions{Size: c.lq}}}
		wk := newRunner(w, c.once).wake
		wk.flushed(3, 1, 0)
		if got := wk.take(); got != c.wantWake {
			t.Errorf("%s: wake %d, want %d", c.name, got, c.wantWake)
		}
		select {
		case <-wk.sig:
		default:
			t.Errorf("%s: the loop was not signalled", c.name)
		}
		wk.flushed(2, 0, 0)
		if got, want := wk.take(), map[bool]int{true: 0, false: 2}[c.lq > 0 && !c.once]; got != want {
			t.Errorf("%s: without named queues wake %d, want %d", c.name, got, want)
		}
		select {
		case <-wk.sig:
		default:
			t.Errorf("%s: the loop was not signalled after a flush that frees nothing to fetch", c.name)
		}
	}
}

// With a local queue, jobs the worker handed back unstarted are fetched
// again at the next completion, not at once.
func TestFlushedFetchesReleasedJobsAtTheNextCompletion(t *testing.T) {
	wk := newWakeups(false)
	wk.setLocalQueue(true)
	wk.flushed(0, 0, 2)
	if got := wk.take(); got != 0 {
		t.Fatalf("a release alone woke %d", got)
	}
	wk.flushed(1, 0, 1)
	if got := wk.take(); got != 3 {
		t.Fatalf("the next completion woke %d, want the 3 released jobs", got)
	}
	wk.flushed(1, 0, 0)
	if got := wk.take(); got != 0 {
		t.Fatalf("a later completion woke %d, want 0", got)
	}
}

// Wake-ups between two looks add up, and signal the loop once.
func TestWakeupsAddUpAndSignalOnce(t *testing.T) {
	wk := newWakeups(false)
	wk.wake(2)
	wk.wake(0) // nothing announced: no signal of its own
	wk.wake(3)
	if got := wk.take(); got != 5 {
		t.Fatalf("take = %d, want 5", got)
	}
	if got := wk.take(); got != 0 {
		t.Fatalf("a second take = %d, want 0", got)
	}
	<-wk.sig
	select {
	case <-wk.sig:
		t.Fatal("signalled twice")
	default:
	}
}
