package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
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
	w.sweepOutage = newOutageLog(w.log, o.Clock, "sweeping dead workers")
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
	recovery := newRecovery(w, once)
	if err := recovery.Start(ctx); err != nil {
		return err
	}
	defer recovery.Stop()
	w.emitStarted(ctx, once)
	// Cron runs with Run only, as in graphile-worker; it stops before Run
	// returns. It starts after the started event, which its events follow.
	cron := newCronRunner(w, once)
	_ = cron.Start(ctx) // it cannot fail to start
	defer cron.Stop()
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
	// Names go in in order; a deadlock can still come from a client that
	// inserts them in another order (graphile-worker's add_jobs), and the
	// statement changed nothing then: try again.
	var err error
	for range 3 {
		if _, err = w.db.Exec(ctx, w.sql.registerTasks, ids); sqlState(err) != "40P01" {
			break
		}
	}
	if err != nil {
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
func (w *Worker) fetch(ctx context.Context, n int, rides []outcome) (jobs []*Job, ran bool, err error) {
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
	ride := 0
	if len(rides) > 0 {
		ride = 1
		ids, revisions := completionArgs(rides)
		args = append(args, ids, revisions)
	}
	rows, err := w.db.Query(ctx, w.sql.fetchText(hasFlags, local, ride, n), args...)
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
	// For fail, what the handler's error asked (FailPermanently,
	// RetryAfter): no more attempts, or the attempt given back and the job
	// run again after delay. A snooze with an empty message keeps
	// last_error.
	permanent bool
	snooze    bool
	delay     time.Duration
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

// runner is one Run or RunOnce. Its loop alone touches the running jobs
// and the local queue; the other parts talk to it through channels: done
// (handlers' results), the fetcher's results, wake (jobs worth fetching),
// cancels (CancelJob's requests) and fatal.
type runner struct {
	w         *Worker
	once      bool
	clock     Clock
	done      chan result
	active    map[int64]*activeJob
	buffer    localQueue // fetched jobs waiting for a slot (LocalQueueOptions)
	ttl       Timer      // fires when the oldest job in buffer has waited the TTL
	completer *completer
	fetcher   *fetcher
	wake      *wakeups
	cancels   *cancellations
	fatal     chan error
}

func newRunner(w *Worker, once bool) *runner {
	r := &runner{
		w:       w,
		once:    once,
		clock:   w.opts.Clock,
		done:    make(chan result, w.opts.Concurrency),
		active:  map[int64]*activeJob{},
		wake:    newWakeups(once),
		cancels: newCancellations(),
		fatal:   make(chan error, 1),
	}
	r.completer = newCompleter(w, r.wake.flushed)
	r.fetcher = newFetcher(w, r.completer, r.held, r.emitLocalQueue, r.wake.setLocalQueue)
	// Below the fetcher's back-pressure limit, so that a long batch delay
	// can never leave the loop waiting for a flush that waits for the delay.
	r.completer.flushAt = r.fetcher.backlogLimit / 2
	return r
}

func (r *runner) loop(ctx context.Context) error {
	// The listener and the stale-lock reset end with the loop; the
	// completer outlives it, to record what shutdown hands back.
	bgCtx, endBackground := context.WithCancel(ctx)
	defer endBackground()
	var background services
	if !r.once {
		background = services{newListener(r.w, r.wake, r.cancels, r.fatal), newStaleLockReset(r.w)}
	}
	_ = background.start(bgCtx) // they cannot fail to start
	_ = r.completer.Start(ctx)
	r.fetcher.startTimers()
	defer r.fetcher.stopTimers()
	r.ttl = stoppedTimer(r.clock)
	defer r.ttl.Stop()

	var fatalErr error
loop:
	for ctx.Err() == nil && fatalErr == nil {
		r.fetcher.woken(r.wake.take())
		r.fill()
		if n := r.fetcher.next(len(r.active), len(r.buffer)); n > 0 {
			r.emitFetchStarted(ctx, n)
			r.fetcher.start(ctx, n)
		}
		select {
		case <-ctx.Done():
		case res := <-r.done:
			r.finish(res)
			r.finishReady()
		case res := <-r.fetcher.results:
			if r.received(ctx, res) {
				break loop
			}
		case <-r.wake.sig:
		case <-r.fetcher.poll.C():
			r.fetcher.polled()
		case <-r.fetcher.refetch.C():
			r.fetcher.delayOver()
		case <-r.ttl.C():
			r.expireBuffer()
		case <-r.cancels.sig:
			r.applyCancels()
		case err := <-r.fatal:
			fatalErr = err
		}
	}
	// A fetch still running goes back with the local queue's jobs.
	r.buffer.push(r.fetcher.wait(), r.clock.Now())
	r.emitShutdown(ctx, fatalErr)
	endBackground()
	r.shutdown(ctx)
	r.returnLostFetch()
	background.stop()
	return fatalErr
}

// jobIDs returns the ids of jobs.
func jobIDs(jobs []*Job) []int64 {
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// returnLostFetch hands back, at shutdown, the jobs that a fetch whose
// answer was lost may have locked, when the worker had no chance to look
// for them while it ran. Every outcome is recorded by then, so any job
// still locked by this worker is one of them. Without this they would wait
// for another worker's sweep, or graphile-worker's 4 hours. A failed look
// is tried again with backoff for as long as the completer keeps trying
// to record outcomes at shutdown: an outage is the likely reason a fetch's
// answer was lost at all.
func (r *runner) returnLostFetch() {
	if !r.fetcher.reconcile || r.completer.gaveUp {
		return // nothing lost, or the database is away: the sweep frees them
	}
	deadline := r.clock.Now().Add(r.completer.gracePeriod())
	for failures := 1; ; failures++ {
		orphans, err := r.returnLocked(min(statementTimeout, deadline.Sub(r.clock.Now())))
		if err == nil {
			if len(orphans) > 0 {
				r.w.log.Warn("gworker: shutdown returned jobs locked by this worker that it never received (a fetch's answer was lost with its connection)",
					slog.Any("job_ids", jobIDs(orphans)))
			}
			return
		}
		wait := backoff(failures, time.Second)
		if !r.clock.Now().Add(wait).Before(deadline) {
			r.w.log.Error("gworker: shutdown could not look for jobs a fetch may have locked without receiving them; "+
				"any stay locked by this worker until a sweep of dead workers frees them (or graphile-worker's 4-hour rule, or force_unlock_workers)",
				slog.Int("attempts", failures), slog.Any("error", err))
			return
		}
		t := r.clock.NewTimer(wait)
		<-t.C()
	}
}

// returnLocked returns to the queue every job locked by this worker, and
// returns them, within timeout.
func (r *runner) returnLocked(timeout time.Duration) ([]*Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	orphans, err := r.w.lockedJobs(ctx, nil)
	if err == nil && len(orphans) > 0 {
		_, err = r.w.db.Exec(ctx, r.w.sql.returnJobs, r.w.id, jobIDs(orphans), nil, nil)
	}
	return orphans, err
}

// fill starts waiting jobs while slots are free.
func (r *runner) fill() {
	for len(r.active) < r.w.opts.Concurrency && len(r.buffer) > 0 {
		r.start(r.buffer.pop())
	}
	if len(r.active) < r.w.opts.Concurrency {
		r.fetcher.slotsIdle()
	}
}

// received hands the jobs of a fetch to the local queue, or straight to
// slots. It reports whether RunOnce is done: the fetch found fewer jobs
// than it asked for, nothing runs or waits, and no outcome was recorded
// while it ran (a completion committing during the fetch can free a named
// queue the fetch could not yet see).
func (r *runner) received(ctx context.Context, res fetchResult) (drained bool) {
	if !r.fetcher.done(res) {
		r.emitFetchFailed(ctx)
		return false
	}
	r.emitFetched(ctx, res.n, res.jobs)
	if r.w.log.Enabled(ctx, slog.LevelDebug) {
		r.w.log.Debug("gworker: fetched jobs", slog.Int("asked", res.n), slog.Int("got", len(res.jobs)),
			slog.Int("running", len(r.active)), slog.Int("buffered", len(r.buffer)))
	}
	if r.fetcher.localQueue() || len(r.buffer) > 0 {
		r.enqueue(res.jobs)
	} else {
		for _, j := range res.jobs {
			r.start(j)
		}
	}
	short := r.fetcher.counted(res)
	if short && r.once && len(r.active) == 0 && len(r.buffer) == 0 &&
		res.settled && r.completer.idle() && r.completer.flushes.Load() == res.flushes {
		return true
	}
	r.fetcher.maybeDelay(len(res.jobs))
	return false
}

// held returns the ids of the jobs the loop holds, running or waiting.
func (r *runner) held() map[int64]bool {
	known := make(map[int64]bool, len(r.active)+len(r.buffer))
	for id := range r.active {
		known[id] = true
	}
	r.buffer.ids(known)
	return known
}

func (r *runner) start(job *Job) {
	// Handler contexts outlive Run's ctx for the grace period; shutdown
	// cancels each running job itself. (A child of a cancellable context
	// would cost an entry in its parent's set of children per job.)
	cctx, cancel := context.WithCancelCause(context.Background())
	jctx := &handlerContext{Context: cctx, w: r.w, job: job}
	a := &activeJob{job: job, cancel: cancel}
	r.active[job.ID] = a
	go func() {
		start := r.clock.Now()
		err := r.w.runJob(jctx, job)
		cancel(nil)
		r.done <- result{a: a, err: err, dur: r.clock.Now().Sub(start)}
	}()
}

// finishReady records the results already waiting, without another trip
// through the loop's select, which locks every channel it waits on: a busy
// worker gets a result per job.
func (r *runner) finishReady() {
	for {
		select {
		case res := <-r.done:
			r.finish(res)
		default:
			return
		}
	}
}

// finish records a handler's result.
func (r *runner) finish(res result) {
	a := res.a
	if a.abandoned {
		return // already handed back by shutdown
	}
	delete(r.active, a.job.ID)
	r.fetcher.finished()
	// Building the job's logger costs allocations; only when it logs.
	log := func() *slog.Logger { return r.w.jobLogger(a.job) }
	switch {
	case a.cancelled != "":
		// Whatever the handler made of it: CancelJob already took the
		// job's remaining attempts, so failing it is final.
		log().Warn("gworker: job cancelled", slog.String("reason", a.cancelled), slog.Any("handler_result", res.err))
		r.completer.add(outcome{job: a.job, kind: outcomeFail, message: a.cancelled})
		r.w.throughput.add(a.job.TaskIdentifier, true)
		r.emitOutcome(res, outcomeFail, a.cancelled)
	case isRunSkipped(res.err):
		r.skipJob(res)
	case res.err == nil:
		if r.w.log.Enabled(context.Background(), slog.LevelDebug) {
			log().Debug("gworker: job completed", slog.Duration("duration", res.dur))
		}
		r.completer.add(outcome{job: a.job, kind: outcomeComplete})
		r.w.throughput.add(a.job.TaskIdentifier, false)
		r.emitOutcome(res, outcomeComplete, "")
	case a.interrupted:
		log().Warn("gworker: job interrupted by shutdown; returning it to the queue", slog.Any("error", res.err))
		r.completer.add(outcome{job: a.job, kind: outcomeReturn, message: interruptedMessage})
		r.emitOutcome(res, outcomeReturn, interruptedMessage)
	default:
		// PostgreSQL text cannot hold NUL; a message with one would never be
		// recorded and the job would stay locked.
		msg := strings.ToValidUTF8(strings.ReplaceAll(res.err.Error(), "\x00", ""), "\uFFFD")
		st := steeringOf(res.err)
		switch {
		case st.snooze:
			log().Info("gworker: job snoozed by its handler; it runs again later and this attempt does not count",
				slog.Duration("delay", st.delay), slog.String("error", msg), slog.Duration("duration", res.dur))
			if st.keepError {
				msg = ""
			}
		case st.permanent || a.job.Attempts >= a.job.MaxAttempts:
			log().Error("gworker: job failed permanently", slog.String("error", msg), slog.Duration("duration", res.dur))
		default:
			log().Warn("gworker: job failed; will retry", slog.String("error", msg), slog.Duration("duration", res.dur))
		}
		o := outcome{job: a.job, kind: outcomeFail, message: msg, permanent: st.permanent, snooze: st.snooze, delay: st.delay}
		var bf *BatchFailure
		if errors.As(res.err, &bf) {
			o.payload = bf.Payload
		}
		r.completer.add(o)
		if !st.snooze { // a snoozed job neither completed nor failed: it runs again
			r.w.throughput.add(a.job.TaskIdentifier, true)
		}
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
	grace := r.clock.NewTimer(max(r.w.opts.GracePeriod, 0))
	defer grace.Stop()
	for len(r.active) > 0 {
		select {
		case res := <-r.done:
			r.finish(res)
			continue
		case <-grace.C():
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
		settle := r.clock.NewTimer(time.Second)
	wait:
		for len(r.active) > 0 {
			select {
			case res := <-r.done:
				r.finish(res)
			case <-settle.C():
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
	r.completer.Stop()
	_ = ctx
}

// errShutdown is the cause of a handler context cancelled by shutdown.
var errShutdown = errors.New("gworker: worker shutting down")
