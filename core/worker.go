package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Worker runs jobs. Create it with NewWorker and start it with Run (until
// cancelled) or RunOnce (until no job is runnable).
type Worker struct {
	opts      WorkerOptions
	db        Database
	id        string
	log       *slog.Logger
	utils     *Utils
	sql       *workerSQL
	tasks     map[string]Task
	active    atomic.Bool
	taskNames []string // the tasks' identifiers, sorted, for the fetch
	hooks     *hookSet // plugins' and WorkerOptions.Hooks' hooks; nil when none
	health    dbHealth // when this worker last lost the database
	// sweepOutage logs failed sweeps of dead workers once per outage.
	sweepOutage *outageLog
	// throughput counts finished jobs for the heartbeat to record.
	throughput throughputCounter
}

// BreakingMigrationError is returned by Run when another process applied a
// breaking migration to the schema while the worker ran: this worker's SQL
// may no longer fit, so it shut down gracefully. graphile-worker exits with
// status 57 in this case.
type BreakingMigrationError struct {
	Schema    string
	Migration int
}

func (e *BreakingMigrationError) Error() string {
	return fmt.Sprintf("gworker: breaking migration %d was applied to schema %q while this worker ran; "+
		"it shut down: upgrade gworker and restart", e.Migration, e.Schema)
}

// PanicError is the failure recorded when a handler panics.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// ErrWorkerRunning is returned by Run and RunOnce while the worker already
// runs.
var ErrWorkerRunning = errors.New("gworker: worker is already running")

// interruptedMessage is last_error of a job handed back by shutdown.
const interruptedMessage = "gworker: job interrupted by worker shutdown and returned to the queue; this attempt does not count"

// NewWorker validates opts and returns a worker. Every invalid option is
// reported, each naming its field.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	u, err := NewUtils(o.Database, UtilsOptions{Schema: o.Schema, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	id, err := newWorkerID()
	if err != nil {
		return nil, err
	}
	w := &Worker{
		opts:  o,
		db:    o.Database,
		id:    id,
		log:   o.Logger.With(slog.String("worker", id)),
		utils: u,
		sql:   newWorkerSQL(newRenderer(o.Schema), o.DurableFetch),
		tasks: make(map[string]Task, len(o.Tasks)),
	}
	w.sweepOutage = newOutageLog(w.log, "sweeping dead workers")
	for _, t := range o.Tasks {
		w.tasks[t.identifier] = t
		w.taskNames = append(w.taskNames, t.identifier)
	}
	slices.Sort(w.taskNames)
	w.installHooks()
	return w, nil
}

// newWorkerID returns a pool id in graphile-worker's form, pool-<18 hex>. It
// is written to locked_by, so force_unlock_workers can name it.
func newWorkerID() (string, error) {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gworker: worker id: %w", err)
	}
	return "pool-" + hex.EncodeToString(b), nil
}

// ID returns the worker's id, the value of locked_by on the jobs it holds.
func (w *Worker) ID() string { return w.id }

// Utils returns a client on the worker's database and schema.
func (w *Worker) Utils() *Utils { return w.utils }

// Run runs jobs until ctx is cancelled (or, with HandleSignals, SIGINT or
// SIGTERM arrives), then shuts down gracefully and returns nil. It returns
// an error if it cannot start, or a *BreakingMigrationError.
func (w *Worker) Run(ctx context.Context) error { return w.run(ctx, false) }

// RunOnce runs jobs until none is runnable now (a named queue is drained,
// one job after the other), then returns.
func (w *Worker) RunOnce(ctx context.Context) error { return w.run(ctx, true) }

func (w *Worker) run(ctx context.Context, once bool) error {
	if !w.active.CompareAndSwap(false, true) {
		return ErrWorkerRunning
	}
	defer w.active.Store(false)
	if w.opts.HandleSignals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	if !w.opts.SkipMigrate {
		if err := w.utils.Migrate(ctx); err != nil {
			return err
		}
	}
	if err := w.registerTasks(ctx); err != nil {
		return err
	}
	// Dead-worker recovery: registration and heartbeats (through shutdown),
	// and sweeps; stopped, and the registration removed, after the jobs.
	stopRecovery, rerr := w.startRecovery(ctx, once)
	if rerr != nil {
		return rerr
	}
	defer stopRecovery()
	w.emitStarted(ctx, once)
	// Cron runs with Run only, as in graphile-worker; it stops before Run returns.
	stopCron := w.startCron(ctx, once)
	defer stopCron()
	w.log.Info("gworker: worker started", slog.Int("concurrency", w.opts.Concurrency), slog.Bool("once", once),
		slog.String("schema", w.opts.Schema))
	err := newRunner(w, once).loop(ctx)
	w.log.Info("gworker: worker stopped", slog.Any("error", err))
	w.emitStopped(ctx, err)
	return err
}

// registerTasks makes sure every task identifier has a row, so that jobs
// added by SQL find it, and caches the ids' names for reading jobs.
func (w *Worker) registerTasks(ctx context.Context) error {
	ids := make([]string, 0, len(w.tasks))
	for id := range w.tasks {
		ids = append(ids, id)
	}
	if _, err := w.db.Exec(ctx, w.sql.registerTasks, ids); err != nil {
		return fmt.Errorf("gworker: register tasks: %w", err)
	}
	rows, err := w.db.Query(ctx, w.sql.readTaskIDs, ids)
	if err != nil {
		return fmt.Errorf("gworker: register tasks: %w", err)
	}
	defer rows.Close()
	names := map[int32]string{}
	for rows.Next() {
		var (
			id   int32
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("gworker: register tasks: %w", err)
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gworker: register tasks: %w", err)
	}
	if len(names) != len(ids) {
		return fmt.Errorf("gworker: register tasks: %d of %d task identifiers found after inserting them", len(names), len(ids))
	}
	w.utils.names.mu.Lock()
	for id, name := range names {
		w.utils.names.tasks[id] = name
	}
	w.utils.names.mu.Unlock()
	return nil
}

func (w *Worker) jobLogger(j *Job) *slog.Logger {
	return w.log.With(slog.Int64("job_id", j.ID), slog.String("task", j.TaskIdentifier), slog.Int("attempts", j.Attempts))
}

// lockedJobs returns the jobs locked by this worker that are not in known.
func (w *Worker) lockedJobs(ctx context.Context, known map[int64]bool) ([]*Job, error) {
	rows, err := w.db.Query(ctx, w.sql.lockedJobs, w.id)
	if err != nil {
		return nil, fmt.Errorf("gworker: find jobs locked by this worker: %w", err)
	}
	defer rows.Close()
	var orphans []*Job
	for rows.Next() {
		j := &Job{}
		if err := rows.Scan(&j.ID, &j.jobQueueID); err != nil {
			return nil, fmt.Errorf("gworker: find jobs locked by this worker: %w", err)
		}
		if !known[j.ID] {
			orphans = append(orphans, j)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: find jobs locked by this worker: %w", err)
	}
	return orphans, nil
}

// fetch locks up to n runnable jobs for this worker in one statement. ran
// says whether the statement was sent, and so on an error may have
// committed.
func (w *Worker) fetch(ctx context.Context, n int) (jobs []*Job, ran bool, err error) {
	flags := w.opts.ForbiddenFlags
	if w.opts.ForbiddenFlagsFunc != nil {
		more, err := w.opts.ForbiddenFlagsFunc(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("gworker: ForbiddenFlagsFunc: %w", err)
		}
		if len(more) > 0 {
			flags = append(append([]string(nil), flags...), more...)
		}
	}
	args := []any{w.id, w.taskNames}
	hasFlags, local := 0, 0
	if len(flags) > 0 {
		hasFlags = 1
		args = append(args, flags)
	}
	if w.opts.UseLocalTime {
		local = 1
		args = append(args, w.opts.Clock.Now())
	}
	rows, err := w.db.Query(ctx, w.sql.fetchText(hasFlags, local, n), args...)
	if err != nil {
		return nil, true, fmt.Errorf("gworker: fetch jobs: %w", err)
	}
	jobs, err = w.utils.readJobs(ctx, rows)
	if err != nil {
		return nil, true, fmt.Errorf("gworker: fetch jobs: %w", err)
	}
	// RETURNING has no order; start the batch in the order it was chosen.
	slices.SortFunc(jobs, func(a, b *Job) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return a.RunAt.Compare(b.RunAt)
	})
	return jobs, true, nil
}

// execute runs the job's handler, turning a panic into a failure.
func (w *Worker) execute(ctx context.Context, job *Job) (err error) {
	t, ok := w.tasks[job.TaskIdentifier]
	if !ok {
		return fmt.Errorf("gworker: no handler for task %q (id %d) in this worker", job.TaskIdentifier, job.taskID)
	}
	defer func() {
		if p := recover(); p != nil {
			stack := debug.Stack()
			w.jobLogger(job).Error("gworker: task panicked", slog.Any("panic", p), slog.String("stack", string(stack)))
			err = &PanicError{Value: p, Stack: stack}
		}
	}()
	return t.run(ctx, job)
}

// outcomeKind is what happens to a job after its handler returned.
type outcomeKind int

const (
	outcomeComplete outcomeKind = iota
	outcomeFail
	outcomeReturn  // interrupted: back to the queue later, attempt not counted
	outcomeRelease // never started: back to the queue as it was
)

type outcome struct {
	job     *Job
	kind    outcomeKind
	message string          // last_error for fail and return
	payload json.RawMessage // for fail: replaces the job's payload (batch jobs' failed items)
	// tries and retryAt: recording it failed for its own data this many
	// times; it is tried again on its own at retryAt.
	tries   int
	retryAt time.Time
}

// activeJob is a job whose handler runs.
type activeJob struct {
	job         *Job
	cancel      context.CancelCauseFunc
	interrupted bool   // shutdown cancelled it
	cancelled   string // CancelJob's reason, when it cancelled it
	abandoned   bool   // shutdown gave up waiting; its result is ignored
}

type result struct {
	a   *activeJob
	err error
	dur time.Duration
}

// runner is one Run or RunOnce.
type runner struct {
	w          *Worker
	once       bool
	jobsCtx    context.Context // parent of handler contexts; outlives Run's ctx for the grace period
	cancelJobs context.CancelFunc
	done       chan result
	active     map[int64]*activeJob
	buffer     []buffered // the local queue
	completer  *completer

	wakeMu   sync.Mutex
	wakeN    int
	released int // jobs handed back unstarted since a completion (local queue)
	wakeSig  chan struct{}
	fatal    chan error

	// fetchOutage logs fetch failures once per outage; reconcile says a
	// failed fetch may have locked jobs the loop never received.
	fetchOutage *outageLog
	reconcile   bool

	cancelMu  sync.Mutex
	cancels   []cancelRequest // from the listener, for the loop
	cancelSig chan struct{}
}

func newRunner(w *Worker, once bool) *runner {
	jobsCtx, cancel := context.WithCancel(context.Background())
	r := &runner{
		w:          w,
		once:       once,
		jobsCtx:    jobsCtx,
		cancelJobs: cancel,
		done:       make(chan result, w.opts.Concurrency),
		active:     map[int64]*activeJob{},
		wakeSig:    make(chan struct{}, 1),
		fatal:      make(chan error, 1),
		cancelSig:  make(chan struct{}, 1),
	}
	r.completer = newCompleter(w)
	r.fetchOutage = newOutageLog(w.log, "fetching jobs")
	return r
}

// wake asks the loop to try to fill n more slots.
func (r *runner) wake(n int) {
	if n > 0 {
		r.poke(n)
	}
}

// poke adds n to the slots worth filling and makes the loop look again.
func (r *runner) poke(n int) {
	r.wakeMu.Lock()
	r.wakeN += n
	r.wakeMu.Unlock()
	select {
	case r.wakeSig <- struct{}{}:
	default:
	}
}

// flushed wakes the loop after outcomes were recorded. Without a local
// queue each job freed a slot to fill. With one, slots are filled from the
// buffer, and a fetch after a completion is worth it only where it can
// find jobs no notification announces: the next job of a freed named
// queue, or jobs this worker handed back unstarted (TTL, a hook's skip),
// which the next completion fetches again, as it always did. RunOnce must
// fetch once more to know it is done. Otherwise an idle worker would
// follow each job with an empty fetch, and start a refetch delay just when
// it should be listening.
//
// Either way the loop looks again, since a smaller backlog may let it fetch.
func (r *runner) flushed(freed, queued, released int) {
	n := freed
	if r.w.opts.LocalQueue.Size > 0 && !r.once {
		r.wakeMu.Lock()
		r.released += released
		n = queued
		if freed > 0 {
			n += r.released
			r.released = 0
		}
		r.wakeMu.Unlock()
	}
	r.poke(n)
}

func (r *runner) takeWake() int {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	n := r.wakeN
	r.wakeN = 0
	return n
}

func (r *runner) loop(ctx context.Context) error {
	o := r.w.opts
	conc, lq := o.Concurrency, o.LocalQueue
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	var bgWG sync.WaitGroup
	if !r.once {
		bgWG.Add(2)
		go func() { defer bgWG.Done(); r.listen(bg) }()
		go func() { defer bgWG.Done(); r.sweepStaleLocks(bg) }()
	}
	r.completer.start(r.flushed)

	// Without a local queue a fetch asks for as many jobs as there are free
	// slots; with one it asks for Size whenever the buffer runs dry.
	want := conc
	if lq.Size > 0 {
		want = lq.Size
	}
	// Outcomes waiting to be recorded keep their jobs locked; past this many
	// the loop stops fetching until the completer catches up.
	backlogLimit := 4 * max(conc, want)
	r.completer.mu.Lock() // the completer runs already
	r.completer.flushAt = backlogLimit / 2
	r.completer.mu.Unlock()

	poll := time.NewTimer(o.PollInterval)
	defer poll.Stop()
	ttl := time.NewTimer(time.Hour)
	ttl.Stop()
	defer ttl.Stop()
	refetch := time.NewTimer(time.Hour)
	refetch.Stop()
	defer refetch.Stop()
	delaying := false // a refetch delay is running
	delayAbortAt := 0 // announced jobs that end the delay early
	announced := 0    // jobs announced during the delay
	pending := want   // jobs worth asking for now
	var fatalErr error
	// One fetch at a time runs beside the loop, so that jobs keep starting
	// and finishing while it waits on the database. With a local queue it
	// starts once the buffer is down to lowWater, so that slots need not
	// wait for it, and asks for the full Size: each fetch costs a walk over
	// the index entries a busy queue leaves behind, so fewer, bigger
	// fetches drain faster than more, smaller ones (measured: 500 at a time
	// 10-15% faster than 250).
	fetched := make(chan fetchResult, 1)
	fetching := false
	sinceFetch := 0 // jobs announced while the fetch runs
	lowWater := lq.Size / 2

loop:
	for ctx.Err() == nil && fatalErr == nil {
		if woken := r.takeWake(); woken > 0 {
			pending = min(want, pending+woken)
			if fetching {
				sinceFetch += woken
			}
			if delaying {
				if announced += woken; announced > delayAbortAt {
					delaying = false
					refetch.Stop()
					r.w.log.Debug("gworker: refetch delay aborted", slog.Int("announced", announced))
					r.emitLocalQueue(LocalQueueEvent{Change: RefetchDelayAborted, Announced: announced})
				}
			}
		}
		for len(r.active) < conc && len(r.buffer) > 0 {
			r.start(r.buffer[0].job)
			r.buffer = r.buffer[1:]
		}
		// Outcomes waiting for the database keep their jobs locked: fetch
		// no more until they are recorded. After a failed fetch, first
		// find the jobs it may have locked without our hearing of it,
		// which needs every outcome recorded.
		if !fetching && pending > 0 && !delaying && r.completer.backlog() < backlogLimit && !r.completer.blocked() &&
			(!r.reconcile || r.completer.idle()) {
			n := 0
			if lq.Size > 0 {
				if len(r.buffer) <= lowWater {
					n = want
				}
			} else {
				n = min(pending, conc-len(r.active))
			}
			if n > 0 {
				fetching, sinceFetch = true, 0
				r.fetchAsync(ctx, n, fetched)
			}
		}
		select {
		case <-ctx.Done():
		case res := <-r.done:
			r.finish(res)
		case f := <-fetched:
			fetching = false
			if f.err != nil {
				fetchFailures := r.fetchOutage.failed(f.err)
				if f.ran {
					// The statement may have locked jobs and committed
					// while its answer was lost.
					r.reconcile = true
				}
				r.w.health.noteLoss()
				pending = 0
				resetTimer(poll, backoff(fetchFailures, o.PollInterval))
				continue
			}
			r.fetchOutage.ok()
			if f.reconciled {
				r.reconcile = false
				r.returnOrphans(f.orphans)
			}
			r.emitFetched(ctx, f.n, f.jobs)
			if r.w.log.Enabled(ctx, slog.LevelDebug) {
				r.w.log.Debug("gworker: fetched jobs", slog.Int("asked", f.n), slog.Int("got", len(f.jobs)),
					slog.Int("running", len(r.active)), slog.Int("buffered", len(r.buffer)))
			}
			if lq.Size > 0 {
				if len(f.jobs) > 0 && len(r.buffer) == 0 {
					resetTimer(ttl, lq.TTL)
				}
				now := time.Now()
				for _, j := range f.jobs {
					r.buffer = append(r.buffer, buffered{job: j, at: now})
				}
			} else {
				for _, j := range f.jobs {
					r.start(j)
				}
			}
			if len(f.jobs) < f.n {
				// Nothing more was there when the fetch looked; jobs
				// announced since may be.
				pending = min(want, sinceFetch)
				resetTimer(poll, o.PollInterval)
				// RunOnce may stop after an empty fetch only if no outcome
				// was recorded meanwhile: a completion committing during the
				// fetch can free a named queue the fetch could not yet see.
				if r.once && len(r.active) == 0 && len(r.buffer) == 0 &&
					f.settled && r.completer.idle() && r.completer.flushes.Load() == f.flushes {
					break loop
				}
			} else if lq.Size == 0 {
				pending -= len(f.jobs)
			}
			if lq.RefetchDelay.Duration > 0 && len(f.jobs) <= lq.RefetchDelay.Threshold {
				// Jobs announced while the fetch ran count towards the
				// abort: enough of them skip the delay altogether.
				if abortAt := mathrand.IntN(lq.RefetchDelay.MaxAbortThreshold + 1); sinceFetch <= abortAt {
					delaying, announced, delayAbortAt = true, sinceFetch, abortAt
					d := time.Duration((0.5 + mathrand.Float64()) * float64(lq.RefetchDelay.Duration))
					resetTimer(refetch, d)
					r.w.log.Debug("gworker: refetch delay started", slog.Duration("delay", d), slog.Int("abort_after", delayAbortAt))
					r.emitLocalQueue(LocalQueueEvent{Change: RefetchDelayStarted, Delay: d, AbortAfter: delayAbortAt})
				}
			}
		case <-r.wakeSig:
		case <-poll.C:
			pending = want
			if fetching {
				sinceFetch = want
			}
			poll.Reset(o.PollInterval)
		case <-refetch.C:
			delaying = false
			pending = want
			r.w.log.Debug("gworker: refetch delay expired")
			r.emitLocalQueue(LocalQueueEvent{Change: RefetchDelayExpired})
		case <-ttl.C:
			r.expireBuffer(lq.TTL, ttl)
		case <-r.cancelSig:
			r.applyCancels()
		case err := <-r.fatal:
			fatalErr = err
		}
	}
	if fetching {
		// A fetch that commits must have its rows read, or its jobs stay
		// locked by nobody: its jobs go back with the local queue's.
		if f := <-fetched; f.err == nil {
			now := time.Now()
			for _, j := range f.jobs {
				r.buffer = append(r.buffer, buffered{job: j, at: now})
			}
		}
	}
	r.emitShutdown(ctx, fatalErr)
	stopBackground()
	r.shutdown(ctx)
	bgWG.Wait()
	return fatalErr
}

// fetchResult is what a fetch started by fetchAsync found.
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

// fetchAsync fetches up to n jobs beside the loop and sends the result to
// out. The fetch is not cancelled by shutdown: once it commits, its rows
// must be read, or the jobs stay locked by nobody.
func (r *runner) fetchAsync(ctx context.Context, n int, out chan<- fetchResult) {
	f := fetchResult{n: n, settled: r.completer.idle(), flushes: r.completer.flushes.Load()}
	var known map[int64]bool
	if r.reconcile {
		// The loop holds every job it knows of in active and buffer; the
		// completer is idle, so no outcome holds one.
		known = make(map[int64]bool, len(r.active)+len(r.buffer))
		for id := range r.active {
			known[id] = true
		}
		for _, b := range r.buffer {
			known[b.job.ID] = true
		}
	}
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if known != nil {
			f.ran = true
			if f.orphans, f.err = r.w.lockedJobs(fctx, known); f.err != nil {
				out <- f
				return
			}
			f.reconciled = true
		}
		f.jobs, f.ran, f.err = r.w.fetch(fctx, n)
		f.ran = f.ran || f.reconciled
		out <- f
	}()
}

// returnOrphans hands back jobs that a fetch locked for this worker but
// whose answer was lost with its connection: the worker never started
// them, so they go back as they were.
func (r *runner) returnOrphans(orphans []*Job) {
	if len(orphans) == 0 {
		return
	}
	ids := make([]int64, len(orphans))
	for i, j := range orphans {
		ids[i] = j.ID
		r.completer.add(outcome{job: j, kind: outcomeRelease})
	}
	r.w.log.Warn("gworker: found jobs locked by this worker that it never received (a fetch's answer was lost with its connection); returning them to the queue",
		slog.Any("job_ids", ids))
}

// buffered is a job waiting in the local queue.
type buffered struct {
	job *Job
	at  time.Time
}

// expireBuffer hands back the jobs that waited in the local queue longer
// than ttl, and re-arms the timer for the rest.
func (r *runner) expireBuffer(ttl time.Duration, timer *time.Timer) {
	now := time.Now()
	r.emitExpiring(now, ttl)
	keep := r.buffer[:0]
	expired := 0
	for _, b := range r.buffer {
		if now.Sub(b.at) >= ttl {
			r.completer.add(outcome{job: b.job, kind: outcomeRelease})
			expired++
		} else {
			keep = append(keep, b)
		}
	}
	r.buffer = keep
	if expired > 0 {
		r.w.log.Debug("gworker: local queue TTL expired; jobs returned", slog.Int("jobs", expired))
	}
	if len(r.buffer) > 0 {
		timer.Reset(r.buffer[0].at.Add(ttl).Sub(now))
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// backoff grows from 100ms to max, with jitter.
func backoff(failures int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(failures, 10)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + time.Duration(mathrand.Int64N(int64(d/2)+1))
}

func (r *runner) start(job *Job) {
	jctx, cancel := context.WithCancelCause(r.jobsCtx)
	jctx = context.WithValue(context.WithValue(jctx, ctxKeyWorker, r.w), ctxKeyJob, job)
	a := &activeJob{job: job, cancel: cancel}
	r.active[job.ID] = a
	go func() {
		start := time.Now()
		err := r.w.runJob(jctx, job)
		cancel(nil)
		r.done <- result{a: a, err: err, dur: time.Since(start)}
	}()
}

// finish records a handler's result.
func (r *runner) finish(res result) {
	a := res.a
	if a.abandoned {
		return // already handed back by shutdown
	}
	delete(r.active, a.job.ID)
	r.w.throughput.finished(a, res.err)
	// Building the job's logger costs allocations; only when it logs.
	log := func() *slog.Logger { return r.w.jobLogger(a.job) }
	switch {
	case a.cancelled != "":
		// Whatever the handler made of it: CancelJob already took the
		// job's remaining attempts, so failing it is final.
		log().Warn("gworker: job cancelled", slog.String("reason", a.cancelled), slog.Any("handler_result", res.err))
		r.completer.add(outcome{job: a.job, kind: outcomeFail, message: a.cancelled})
		r.emitOutcome(res, outcomeFail, a.cancelled)
	case isRunSkipped(res.err):
		r.skipJob(res)
	case res.err == nil:
		if r.w.log.Enabled(context.Background(), slog.LevelDebug) {
			log().Debug("gworker: job completed", slog.Duration("duration", res.dur))
		}
		r.completer.add(outcome{job: a.job, kind: outcomeComplete})
		r.emitOutcome(res, outcomeComplete, "")
	case a.interrupted:
		log().Warn("gworker: job interrupted by shutdown; returning it to the queue", slog.Any("error", res.err))
		r.completer.add(outcome{job: a.job, kind: outcomeReturn, message: interruptedMessage})
		r.emitOutcome(res, outcomeReturn, interruptedMessage)
	default:
		// PostgreSQL text cannot hold NUL; a message with one would never be
		// recorded and the job would stay locked.
		msg := strings.ToValidUTF8(strings.ReplaceAll(res.err.Error(), "\x00", ""), "\uFFFD")
		if a.job.Attempts >= a.job.MaxAttempts {
			log().Error("gworker: job failed permanently", slog.String("error", msg), slog.Duration("duration", res.dur))
		} else {
			log().Warn("gworker: job failed; will retry", slog.String("error", msg), slog.Duration("duration", res.dur))
		}
		o := outcome{job: a.job, kind: outcomeFail, message: msg}
		var bf *BatchFailure
		if errors.As(res.err, &bf) {
			o.payload = bf.Payload
		}
		r.completer.add(o)
		r.emitOutcome(res, outcomeFail, msg)
	}
}

// shutdown lets running jobs finish within the grace period, cancels the
// rest, hands back those that did not finish, and flushes every outcome.
func (r *runner) shutdown(ctx context.Context) {
	r.emitReleasing()
	for _, b := range r.buffer {
		r.completer.add(outcome{job: b.job, kind: outcomeRelease})
	}
	r.buffer = nil
	grace := time.NewTimer(max(r.w.opts.GracePeriod, 0))
	defer grace.Stop()
	for len(r.active) > 0 {
		select {
		case res := <-r.done:
			r.finish(res)
			continue
		case <-grace.C:
		}
		break
	}
	if len(r.active) > 0 {
		r.w.log.Warn("gworker: grace period over; cancelling running jobs", slog.Int("jobs", len(r.active)))
		for _, a := range r.active {
			a.interrupted = true
			a.cancel(errShutdown)
		}
		// Handlers that honour their context return now; give them a moment.
		settle := time.NewTimer(time.Second)
	wait:
		for len(r.active) > 0 {
			select {
			case res := <-r.done:
				r.finish(res)
			case <-settle.C:
				break wait
			}
		}
		settle.Stop()
		for id, a := range r.active {
			r.w.jobLogger(a.job).Error("gworker: job ignores cancellation; returning it to the queue while its handler still runs")
			a.abandoned = true
			delete(r.active, id)
			r.completer.add(outcome{job: a.job, kind: outcomeReturn, message: interruptedMessage})
			r.emitOutcome(result{a: a, err: errShutdown}, outcomeReturn, interruptedMessage)
		}
	}
	r.cancelJobs()
	r.completer.stop()
	_ = ctx
}

// listen wakes the loop on jobs:insert and stops it on a breaking
// worker:migrate. When the driver cannot listen, polling does it all.
func (r *runner) listen(ctx context.Context) {
	outage := newOutageLog(r.w.log, "listening for notifications (LISTEN)")
	for ctx.Err() == nil {
		n, err := r.w.db.Listen(ctx, "jobs:insert", "worker:migrate", cancelChannel)
		if errors.Is(err, ErrNotificationsUnsupported) {
			r.w.log.Info("gworker: driver cannot LISTEN; relying on polling", slog.Duration("poll_interval", r.w.opts.PollInterval))
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures := outage.failed(err)
			sleepCtx(ctx, backoff(failures, 10*time.Second))
			continue
		}
		outage.ok()
		r.w.log.Debug("gworker: listening for notifications")
		// Jobs may have been added while nobody listened.
		r.wake(r.w.opts.Concurrency)
		r.receive(ctx, n)
		_ = n.Close(context.WithoutCancel(ctx))
	}
}

func (r *runner) receive(ctx context.Context, n Notifications) {
	for {
		msg, err := n.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.w.log.Warn("gworker: notifications ended; listening again", slog.Any("error", err))
			}
			return
		}
		switch {
		case msg.Reconnected:
			r.w.log.Info("gworker: LISTEN connection re-established; polling now")
			r.wake(r.w.opts.Concurrency)
		case msg.Channel == cancelChannel:
			var c cancelRequest
			if json.Unmarshal([]byte(msg.Payload), &c) == nil && c.Schema == r.w.opts.Schema && c.Worker == r.w.id {
				r.cancelMu.Lock()
				r.cancels = append(r.cancels, c)
				r.cancelMu.Unlock()
				select {
				case r.cancelSig <- struct{}{}:
				default:
				}
			}
		case msg.Channel == "jobs:insert":
			r.wake(insertCount(msg.Payload))
		case msg.Channel == "worker:migrate":
			var m struct {
				MigrationNumber int  `json:"migrationNumber"`
				Breaking        bool `json:"breaking"`
			}
			if json.Unmarshal([]byte(msg.Payload), &m) != nil || !m.Breaking {
				continue
			}
			// The channel is server-wide and names no schema, and a
			// migration this worker knows cannot break it: only a newer
			// breaking migration of our own schema is a reason to stop.
			if m.MigrationNumber <= LatestMigration {
				continue
			}
			if _, breaking, err := r.w.utils.ledger(ctx); err == nil && breaking <= LatestMigration {
				continue
			}
			err := &BreakingMigrationError{Schema: r.w.opts.Schema, Migration: m.MigrationNumber}
			r.w.log.Error("gworker: breaking migration applied; shutting down", slog.Int("migration", m.MigrationNumber))
			select {
			case r.fatal <- err:
			default:
			}
		}
	}
}

// insertCount reads the job count of a jobs:insert payload
// ({"r":..., "count":N}); an empty or unreadable payload counts as 1.
func insertCount(payload string) int {
	if payload == "" {
		return 1
	}
	var p struct {
		Count *json.Number `json:"count"`
	}
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p.Count == nil {
		return 1
	}
	n, err := strconv.ParseFloat(string(*p.Count), 64)
	if err != nil {
		return 1
	}
	if n > 1<<20 {
		return 1 << 20
	}
	return int(n)
}

// sweepStaleLocks frees locks older than 4 hours, first at a random moment
// within a minute, then every Min..MaxResetLockedInterval, jittered so that
// many workers do not sweep together.
func (r *runner) sweepStaleLocks(ctx context.Context) {
	o := r.w.opts
	first := min(time.Minute, o.MaxResetLockedInterval)
	t := time.NewTimer(time.Duration(mathrand.Int64N(int64(first) + 1)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.w.db.Exec(ctx, r.w.sql.resetLockedAt); err != nil && ctx.Err() == nil {
			r.w.log.Warn("gworker: freeing stale locks failed", slog.Any("error", err))
		}
		span := int64(o.MaxResetLockedInterval - o.MinResetLockedInterval)
		t.Reset(o.MinResetLockedInterval + time.Duration(mathrand.Int64N(span+1)))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// errShutdown is the cause of a handler context cancelled by shutdown.
var errShutdown = errors.New("gworker: worker shutting down")

// cancelRequest is the payload of a cancelChannel notification.
type cancelRequest struct {
	Schema string `json:"schema"`
	ID     int64  `json:"id"`
	Worker string `json:"worker"`
	Reason string `json:"reason"`
}

// applyCancels cancels the running or waiting jobs CancelJob asked for.
func (r *runner) applyCancels() {
	r.cancelMu.Lock()
	reqs := r.cancels
	r.cancels = nil
	r.cancelMu.Unlock()
	for _, c := range reqs {
		if a, ok := r.active[c.ID]; ok && a.cancelled == "" {
			a.cancelled = c.Reason
			a.cancel(&CancelledError{Reason: c.Reason})
			continue
		}
		for i, b := range r.buffer {
			if b.job.ID == c.ID {
				r.buffer = append(r.buffer[:i], r.buffer[i+1:]...)
				r.completer.add(outcome{job: b.job, kind: outcomeFail, message: c.Reason})
				r.emitCancelledWaiting(b.job, c.Reason)
				break
			}
		}
	}
}
