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
// slots and jobs worth asking for. With one it asks for a whole batch once
// the queue is down to half of it, so that slots need not wait for it: each
// fetch costs a walk over the index entries a busy queue leaves behind, so
// fewer, bigger fetches drain faster than more, smaller ones (measured: 500
// at a time 10-15% faster than 250).
//
// An adaptive local queue (LocalQueueOptions.Size 0) sizes the batch to
// demand; see adapt. At its smallest it has no batch at all and fetches as
// without a local queue, so a worker whose jobs are slow, or few, locks no
// job that no slot is free for.
//
// A fetch also carries the completions waiting to be recorded (see
// completer.takeRides), so that a busy worker records and fetches in one
// round trip.
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

	conc     int
	lowWater int // with a local queue: fetch once it is down to this
	// batch is how many jobs one fetch of the local queue asks for; 0 is
	// no local queue: fetches ask for free slots. adaptive: it follows
	// demand (LocalQueueOptions.Size 0), from 0 up to maxBatch; see adapt.
	batch    int
	adaptive bool
	maxBatch int
	// setLocalQueue tells the loop's wake-ups whether slots are filled from
	// a local queue, as an adaptive one comes and goes.
	setLocalQueue func(bool)
	// finishedDuring counts the jobs that finished while the fetch ran, and
	// starved says a slot waited for it with nothing in the local queue.
	finishedDuring int
	starved        bool
	backlogLimit   int // unrecorded outcomes past which fetching waits
	pollInterval   time.Duration
	delay          RefetchDelayOptions

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
	// failed describes the last failed fetch, for its event.
	failed FetchFailed
}

func newFetcher(w *Worker, c *completer, held func() map[int64]bool, emit func(LocalQueueEvent), setLocalQueue func(bool)) *fetcher {
	o := w.opts
	f := &fetcher{
		w: w, completer: c, clock: o.Clock, held: held, emit: emit, setLocalQueue: setLocalQueue,
		conc: o.Concurrency, pollInterval: o.PollInterval, delay: o.LocalQueue.RefetchDelay,
		results: make(chan fetchResult, 1),
		outage:  newOutageLog(w.log, o.Clock, "fetching jobs"),
	}
	lq := o.LocalQueue
	switch {
	case lq.Disabled:
	case lq.Size > 0:
		f.setBatch(lq.Size)
	default:
		f.adaptive, f.maxBatch = true, lq.maxBatch(f.conc)
	}
	// Outcomes waiting to be recorded keep their jobs locked; past this many
	// the loop stops fetching until the completer catches up.
	f.backlogLimit = 4 * max(f.conc, f.want(), f.maxBatch)
	f.pending = f.want()
	return f
}

// setBatch makes one fetch ask for up to n jobs, from a local queue; n 0
// turns the local queue off.
func (f *fetcher) setBatch(n int) {
	f.batch, f.lowWater = n, n/2
	f.setLocalQueue(n > 0)
}

// localQueue reports whether slots are filled from a local queue, with a
// batch.
func (f *fetcher) localQueue() bool { return f.batch > 0 }

// want is how many jobs one fetch asks for at most.
func (f *fetcher) want() int {
	if f.batch > 0 {
		return f.batch
	}
	return f.conc
}

// adapt sizes an adaptive local queue's batch after a fetch that asked for
// asked jobs and got got:
//
//   - it grows when the fetch came back full and slots could have used
//     more meanwhile: without a batch, some job finished while the fetch
//     ran (the free slot waits for the next fetch); with one, a slot waited
//     with the local queue empty. The first batch is the concurrency, then
//     it doubles up to maxBatch. Slots that still wait at maxBatch mean a
//     fetch takes longer than half a batch lasts: the next fetch then
//     starts as soon as one returns (a whole batch may be left waiting),
//     so that the database is always fetching for a worker that keeps up.
//   - it shrinks by half, and below the concurrency to none, when the fetch
//     came back short (the backlog is gone), or when with a batch nothing
//     finished while the fetch ran (jobs are slow: a smaller batch keeps
//     every slot busy as well, and locks fewer jobs nobody runs).
func (f *fetcher) adapt(asked, got int) {
	if !f.adaptive {
		return
	}
	full := got >= asked
	switch {
	case full && f.batch == 0 && f.finishedDuring > 0:
		f.setBatch(f.conc)
		f.pending = f.want()
	case full && f.batch == f.maxBatch && f.starved:
		if f.lowWater == f.batch {
			return
		}
		f.lowWater = f.batch
	case full && f.batch > 0 && f.starved:
		f.setBatch(min(2*f.batch, f.maxBatch))
	case f.batch > 0 && (!full || f.finishedDuring == 0):
		if n := f.batch / 2; n >= f.conc {
			f.setBatch(n)
		} else {
			f.setBatch(0)
		}
	default:
		return
	}
	if f.w.log.Enabled(context.Background(), slog.LevelDebug) {
		f.w.log.Debug("gworker: local queue batch adapted", slog.Int("batch", f.batch),
			slog.Int("asked", asked), slog.Int("got", got), slog.Int("finished_during_fetch", f.finishedDuring))
	}
}

// finished counts a job that finished, towards adapt.
func (f *fetcher) finished() {
	if f.fetching {
		f.finishedDuring++
	}
}

// slotsIdle notes, while a fetch runs, that a slot is free and the local
// queue empty.
func (f *fetcher) slotsIdle() {
	if f.fetching {
		f.starved = true
	}
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
	f.pending = min(f.want(), f.pending+n)
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
	f.pending = f.want()
	if f.fetching {
		f.sinceFetch = f.want()
	}
	f.poll.Reset(f.pollInterval)
}

// delayOver: the refetch delay ran out.
func (f *fetcher) delayOver() {
	f.delaying = false
	f.pending = f.want()
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
	if f.localQueue() {
		if waiting <= f.lowWater {
			return f.want()
		}
		return 0
	}
	if waiting > 0 {
		return 0 // a batch that shrank away is still being taken
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
	f.fetching, f.sinceFetch, f.finishedDuring, f.starved = true, 0, 0, false
	res := fetchResult{n: n, settled: f.completer.idle(), flushes: f.completer.flushes.Load()}
	var known map[int64]bool
	var rides []outcome
	if f.reconcile {
		// The loop holds every job it knows of; the completer is idle, so
		// no outcome holds one.
		known = f.held()
	} else if rides = f.completer.takeRides(); len(rides) > 0 {
		// The fetch records them, and could not see what they free.
		res.settled = false
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
		res.jobs, res.ran, res.err = f.w.fetch(fctx, n, rides)
		res.ran = res.ran || res.reconciled
		if len(rides) > 0 {
			f.completer.rode(rides, res.err)
		}
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
		wait := backoff(failures, f.pollInterval)
		f.poll.Reset(wait)
		f.failed = FetchFailed{WorkerID: f.w.id, Asked: res.n, Err: res.err, Failures: failures, RetryIn: wait}
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
	f.adapt(res.n, len(res.jobs))
	if len(res.jobs) < res.n {
		// Nothing more was there when the fetch looked; jobs announced
		// since may be.
		f.pending = min(f.want(), f.sinceFetch)
		f.poll.Reset(f.pollInterval)
		return true
	}
	if !f.localQueue() {
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
	res := <-f.results
	if res.err != nil {
		// It may have locked jobs and committed while its answer was lost.
		f.reconcile = f.reconcile || res.ran
		return nil
	}
	return res.jobs
}

// returnOrphans hands back jobs that a fetch locked for this worker but
// whose answer was lost with its connection: the worker never started
// them, so they go back as they were.
func (f *fetcher) returnOrphans(orphans []*Job) {
	if len(orphans) == 0 {
		return
	}
	for _, j := range orphans {
		f.completer.add(outcome{job: j, kind: outcomeRelease})
	}
	f.w.log.Warn("gworker: found jobs locked by this worker that it never received (a fetch's answer was lost with its connection); returning them to the queue",
		slog.Any("job_ids", jobIDs(orphans)))
}
