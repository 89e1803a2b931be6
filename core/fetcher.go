package core

import (
	"context"
	"log/slog"
	mathrand "math/rand/v2"
	"time"
)

// fetcher decides when the loop fetches and how many jobs it asks for, and
// runs one fetch at a time beside the loop, so that jobs keep starting and
// finishing while it waits on the database. Only the loop calls it.
//
// Without a local queue a fetch asks for as many jobs as there are free
// slots and jobs worth asking for. With one it asks for the full Size once
// the queue is down to half of it, so that slots need not wait for it: each
// fetch costs a walk over the index entries a busy queue leaves behind, so
// fewer, bigger fetches drain faster than more, smaller ones (measured: 500
// at a time 10-15% faster than 250).
//
// It also keeps the poll timer (fetch at least every PollInterval, or with
// backoff after a failure) and the refetch delay (after a fetch that found
// little, wait a while unless enough jobs are announced).
type fetcher struct {
	w         *Worker
	completer *completer
	clock     Clock
	// held returns the jobs the loop holds (running or waiting), for a
	// fetch that first looks for jobs a lost fetch locked.
	held func() map[int64]bool
	// emit reports the refetch delay's changes.
	emit func(LocalQueueEvent)

	conc         int
	want         int  // jobs one fetch asks for at most
	localQueue   bool // slots are filled from a local queue
	lowWater     int  // with a local queue: fetch once it is down to this
	backlogLimit int  // unrecorded outcomes past which fetching waits
	pollInterval time.Duration
	delay        RefetchDelayOptions

	results chan fetchResult
	poll    Timer
	refetch Timer

	pending    int  // jobs worth asking for now
	fetching   bool // a fetch runs
	sinceFetch int  // jobs announced while the fetch runs
	delaying   bool // a refetch delay runs
	abortAt    int  // announced jobs that end the delay early
	announced  int  // jobs announced during the delay
	// reconcile says a failed fetch may have locked jobs the loop never
	// received; the next fetch looks for them first.
	reconcile bool
	// outage logs fetch failures once per outage.
	outage *outageLog
}

func newFetcher(w *Worker, c *completer, held func() map[int64]bool, emit func(LocalQueueEvent)) *fetcher {
	o := w.opts
	f := &fetcher{
		w: w, completer: c, clock: o.Clock, held: held, emit: emit,
		conc: o.Concurrency, want: o.Concurrency, pollInterval: o.PollInterval, delay: o.LocalQueue.RefetchDelay,
		results: make(chan fetchResult, 1),
		outage:  newOutageLog(w.log, o.Clock, "fetching jobs"),
	}
	if o.LocalQueue.Size > 0 {
		f.localQueue, f.want, f.lowWater = true, o.LocalQueue.Size, o.LocalQueue.Size/2
	}
	// Outcomes waiting to be recorded keep their jobs locked; past this many
	// the loop stops fetching until the completer catches up.
	f.backlogLimit = 4 * max(f.conc, f.want)
	f.pending = f.want
	return f
}

// startTimers starts the poll timer; the refetch delay's waits until a
// delay starts.
func (f *fetcher) startTimers() {
	f.poll = f.clock.NewTimer(f.pollInterval)
	f.refetch = stoppedTimer(f.clock)
}

func (f *fetcher) stopTimers() {
	f.poll.Stop()
	f.refetch.Stop()
}

// woken counts n announced jobs: worth asking for, and towards ending a
// refetch delay.
func (f *fetcher) woken(n int) {
	if n <= 0 {
		return
	}
	f.pending = min(f.want, f.pending+n)
	if f.fetching {
		f.sinceFetch += n
	}
	if f.delaying {
		if f.announced += n; f.announced > f.abortAt {
			f.delaying = false
			f.refetch.Stop()
			f.w.log.Debug("gworker: refetch delay aborted", slog.Int("announced", f.announced))
			f.emit(LocalQueueEvent{Change: RefetchDelayAborted, Announced: f.announced})
		}
	}
}

// polled: the poll interval passed, so any number of jobs may be there.
func (f *fetcher) polled() {
	f.pending = f.want
	if f.fetching {
		f.sinceFetch = f.want
	}
	f.poll.Reset(f.pollInterval)
}

// delayOver: the refetch delay ran out.
func (f *fetcher) delayOver() {
	f.delaying = false
	f.pending = f.want
	f.w.log.Debug("gworker: refetch delay expired")
	f.emit(LocalQueueEvent{Change: RefetchDelayExpired})
}

// next returns how many jobs to fetch now, given the running and the
// waiting jobs; 0 for none. Outcomes waiting for the database keep their
// jobs locked: it fetches no more until they are recorded. After a failed
// fetch, it first finds the jobs that fetch may have locked without the
// loop hearing of it, which needs every outcome recorded.
func (f *fetcher) next(running, waiting int) int {
	if f.fetching || f.pending <= 0 || f.delaying || !f.completer.mayFetch(f.backlogLimit, f.reconcile) {
		return 0
	}
	if f.localQueue {
		if waiting <= f.lowWater {
			return f.want
		}
		return 0
	}
	return min(f.pending, f.conc-running)
}

// fetchResult is what a fetch started by start found.
type fetchResult struct {
	n    int // jobs asked for
	jobs []*Job
	err  error
	// settled says no outcome was waiting or being recorded when the fetch
	// started, and flushes how many flushes the completer had done then.
	settled bool
	flushes int64
	// ran says a statement was sent: on an error, it may have committed.
	ran bool
	// reconciled says the jobs locked by this worker were checked first;
	// orphans are those of them the worker did not know of.
	reconciled bool
	orphans    []*Job
}

// start fetches up to n jobs beside the loop and sends the result to
// f.results. The fetch is not cancelled by shutdown: once it commits, its
// rows must be read, or the jobs stay locked by nobody.
func (f *fetcher) start(ctx context.Context, n int) {
	f.fetching, f.sinceFetch = true, 0
	res := fetchResult{n: n, settled: f.completer.idle(), flushes: f.completer.flushes.Load()}
	var known map[int64]bool
	if f.reconcile {
		// The loop holds every job it knows of; the completer is idle, so
		// no outcome holds one.
		known = f.held()
	}
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if known != nil {
			res.ran = true
			if res.orphans, res.err = f.w.lockedJobs(fctx, known); res.err != nil {
				f.results <- res
				return
			}
			res.reconciled = true
		}
		res.jobs, res.ran, res.err = f.w.fetch(fctx, n)
		res.ran = res.ran || res.reconciled
		f.results <- res
	}()
}

// done takes the result of the fetch. It reports false when the fetch
// failed: the loop then waits out a backoff, or a wake-up.
func (f *fetcher) done(res fetchResult) bool {
	f.fetching = false
	if res.err != nil {
		failures := f.outage.failed(res.err)
		if res.ran {
			// The statement may have locked jobs and committed while its
			// answer was lost.
			f.reconcile = true
		}
		f.w.health.noteLoss(f.clock.Now())
		f.pending = 0
		f.poll.Reset(backoff(failures, f.pollInterval))
		return false
	}
	f.outage.ok()
	if res.reconciled {
		f.reconcile = false
		f.returnOrphans(res.orphans)
	}
	return true
}

// counted updates what is worth asking for once the loop took the jobs of
// res. It reports whether the fetch found fewer jobs than it asked for.
func (f *fetcher) counted(res fetchResult) (short bool) {
	if len(res.jobs) < res.n {
		// Nothing more was there when the fetch looked; jobs announced
		// since may be.
		f.pending = min(f.want, f.sinceFetch)
		f.poll.Reset(f.pollInterval)
		return true
	}
	if !f.localQueue {
		f.pending -= len(res.jobs)
	}
	return false
}

// maybeDelay starts a refetch delay after a fetch that found at most
// Threshold jobs. Jobs announced while the fetch ran count towards the
// abort: enough of them skip the delay altogether.
func (f *fetcher) maybeDelay(got int) {
	if f.delay.Duration <= 0 || got > f.delay.Threshold {
		return
	}
	if abortAt := mathrand.IntN(f.delay.MaxAbortThreshold + 1); f.sinceFetch <= abortAt {
		f.delaying, f.announced, f.abortAt = true, f.sinceFetch, abortAt
		d := time.Duration((0.5 + mathrand.Float64()) * float64(f.delay.Duration))
		f.refetch.Reset(d)
		f.w.log.Debug("gworker: refetch delay started", slog.Duration("delay", d), slog.Int("abort_after", abortAt))
		f.emit(LocalQueueEvent{Change: RefetchDelayStarted, Delay: d, AbortAfter: abortAt})
	}
}

// wait waits for a fetch still running at shutdown and returns the jobs
// it locked: a fetch that commits must have its rows read, or its jobs
// stay locked by nobody.
func (f *fetcher) wait() []*Job {
	if !f.fetching {
		return nil
	}
	f.fetching = false
	if res := <-f.results; res.err == nil {
		return res.jobs
	}
	return nil
}

// returnOrphans hands back jobs that a fetch locked for this worker but
// whose answer was lost with its connection: the worker never started
// them, so they go back as they were.
func (f *fetcher) returnOrphans(orphans []*Job) {
	if len(orphans) == 0 {
		return
	}
	ids := make([]int64, len(orphans))
	for i, j := range orphans {
		ids[i] = j.ID
		f.completer.add(outcome{job: j, kind: outcomeRelease})
	}
	f.w.log.Warn("gworker: found jobs locked by this worker that it never received (a fetch's answer was lost with its connection); returning them to the queue",
		slog.Any("job_ids", ids))
}
