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
	opts    WorkerOptions
	db      Database
	id      string
	log     *slog.Logger
	utils   *Utils
	sql     *workerSQL
	tasks   map[string]Task
	active  atomic.Bool
	taskMu  sync.RWMutex
	taskIDs []int64          // registered task ids, for the fetch
	byID    map[int32]Task   // task id -> task
	names   map[int32]string // task id -> identifier
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
		sql:   newWorkerSQL(newRenderer(o.Schema)),
		tasks: make(map[string]Task, len(o.Tasks)),
	}
	for _, t := range o.Tasks {
		w.tasks[t.identifier] = t
	}
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
	w.log.Info("gworker: worker started", slog.Int("concurrency", w.opts.Concurrency), slog.Bool("once", once),
		slog.String("schema", w.opts.Schema))
	err := newRunner(w, once).loop(ctx)
	w.log.Info("gworker: worker stopped", slog.Any("error", err))
	return err
}

// registerTasks makes sure every task identifier has a row and caches the
// ids: the fetch filters on task_id.
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
	byID := map[int32]Task{}
	names := map[int32]string{}
	var taskIDs []int64
	for rows.Next() {
		var (
			id   int32
			name string
		)
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("gworker: register tasks: %w", err)
		}
		byID[id], names[id] = w.tasks[name], name
		taskIDs = append(taskIDs, int64(id))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gworker: register tasks: %w", err)
	}
	if len(taskIDs) != len(ids) {
		return fmt.Errorf("gworker: register tasks: %d of %d task identifiers found after inserting them", len(taskIDs), len(ids))
	}
	w.taskMu.Lock()
	w.taskIDs, w.byID, w.names = taskIDs, byID, names
	w.taskMu.Unlock()
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

// fetch locks up to n runnable jobs for this worker in one statement.
func (w *Worker) fetch(ctx context.Context, n int) ([]*Job, error) {
	flags := w.opts.ForbiddenFlags
	if w.opts.ForbiddenFlagsFunc != nil {
		more, err := w.opts.ForbiddenFlagsFunc(ctx)
		if err != nil {
			return nil, fmt.Errorf("gworker: ForbiddenFlagsFunc: %w", err)
		}
		if len(more) > 0 {
			flags = append(append([]string(nil), flags...), more...)
		}
	}
	w.taskMu.RLock()
	taskIDs := w.taskIDs
	w.taskMu.RUnlock()
	args := []any{w.id, taskIDs, int32(n)}
	hasFlags, local := 0, 0
	if len(flags) > 0 {
		hasFlags = 1
		args = append(args, flags)
	}
	if w.opts.UseLocalTime {
		local = 1
		args = append(args, w.opts.Clock())
	}
	rows, err := w.db.Query(ctx, w.sql.fetch[hasFlags][local], args...)
	if err != nil {
		return nil, fmt.Errorf("gworker: fetch jobs: %w", err)
	}
	jobs, err := w.utils.readJobs(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("gworker: fetch jobs: %w", err)
	}
	return jobs, nil
}

// execute runs the job's handler, turning a panic into a failure.
func (w *Worker) execute(ctx context.Context, job *Job) (err error) {
	w.taskMu.RLock()
	t, ok := w.byID[job.taskID]
	w.taskMu.RUnlock()
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
	outcomeReturn // back to the queue, attempt not counted
)

type outcome struct {
	job     *Job
	kind    outcomeKind
	message string // last_error for fail and return
}

// activeJob is a job whose handler runs.
type activeJob struct {
	job         *Job
	cancel      context.CancelFunc
	interrupted bool // shutdown cancelled it
	abandoned   bool // shutdown gave up waiting; its result is ignored
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
	completer  *completer

	wakeMu  sync.Mutex
	wakeN   int
	wakeSig chan struct{}
	fatal   chan error
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
	}
	r.completer = newCompleter(w)
	return r
}

// wake asks the loop to try to fill n more slots.
func (r *runner) wake(n int) {
	if n <= 0 {
		return
	}
	r.wakeMu.Lock()
	r.wakeN += n
	r.wakeMu.Unlock()
	select {
	case r.wakeSig <- struct{}{}:
	default:
	}
}

func (r *runner) takeWake() int {
	r.wakeMu.Lock()
	defer r.wakeMu.Unlock()
	n := r.wakeN
	r.wakeN = 0
	return n
}

func (r *runner) loop(ctx context.Context) error {
	conc := r.w.opts.Concurrency
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	var bgWG sync.WaitGroup
	if !r.once {
		bgWG.Add(2)
		go func() { defer bgWG.Done(); r.listen(bg) }()
		go func() { defer bgWG.Done(); r.sweepStaleLocks(bg) }()
	}
	r.completer.start(r.wake)

	poll := time.NewTimer(r.w.opts.PollInterval)
	defer poll.Stop()
	pending := conc // slots worth trying to fill now
	var fatalErr error
	fetchFailures := 0

	for ctx.Err() == nil && fatalErr == nil {
		pending = min(conc, pending+r.takeWake())
		if free := conc - len(r.active); pending > 0 && free > 0 {
			n := min(pending, free)
			// A fetch that commits must have its rows read, or the jobs
			// stay locked by nobody: it is not cancelled by shutdown.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			jobs, err := r.w.fetch(fctx, n)
			cancel()
			if err != nil {
				fetchFailures++
				r.w.log.Error("gworker: fetching jobs failed; will retry", slog.Any("error", err))
				pending = 0
				resetTimer(poll, backoff(fetchFailures, r.w.opts.PollInterval))
			} else {
				fetchFailures = 0
				for _, j := range jobs {
					r.start(j)
				}
				if len(jobs) < n {
					pending = 0
					resetTimer(poll, r.w.opts.PollInterval)
					if r.once && len(r.active) == 0 && r.completer.idle() {
						break
					}
				} else {
					pending -= len(jobs)
				}
			}
			continue
		}
		select {
		case <-ctx.Done():
		case res := <-r.done:
			r.finish(res)
		case <-r.wakeSig:
		case <-poll.C:
			pending = conc
			poll.Reset(r.w.opts.PollInterval)
		case err := <-r.fatal:
			fatalErr = err
		}
	}
	stopBackground()
	r.shutdown(ctx)
	bgWG.Wait()
	return fatalErr
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
	jctx, cancel := context.WithCancel(r.jobsCtx)
	jctx = context.WithValue(context.WithValue(jctx, ctxKeyWorker, r.w), ctxKeyJob, job)
	a := &activeJob{job: job, cancel: cancel}
	r.active[job.ID] = a
	go func() {
		start := time.Now()
		err := r.w.execute(jctx, job)
		cancel()
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
	log := r.w.jobLogger(a.job)
	switch {
	case res.err == nil:
		log.Debug("gworker: job completed", slog.Duration("duration", res.dur))
		r.completer.add(outcome{job: a.job, kind: outcomeComplete})
	case a.interrupted:
		log.Warn("gworker: job interrupted by shutdown; returning it to the queue", slog.Any("error", res.err))
		r.completer.add(outcome{job: a.job, kind: outcomeReturn, message: interruptedMessage})
	default:
		// PostgreSQL text cannot hold NUL; a message with one would never be
		// recorded and the job would stay locked.
		msg := strings.ToValidUTF8(strings.ReplaceAll(res.err.Error(), "\x00", ""), "\uFFFD")
		if a.job.Attempts >= a.job.MaxAttempts {
			log.Error("gworker: job failed permanently", slog.String("error", msg), slog.Duration("duration", res.dur))
		} else {
			log.Warn("gworker: job failed; will retry", slog.String("error", msg), slog.Duration("duration", res.dur))
		}
		r.completer.add(outcome{job: a.job, kind: outcomeFail, message: msg})
	}
}

// shutdown lets running jobs finish within the grace period, cancels the
// rest, hands back those that did not finish, and flushes every outcome.
func (r *runner) shutdown(ctx context.Context) {
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
			a.cancel()
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
		}
	}
	r.cancelJobs()
	r.completer.stop()
	_ = ctx
}

// listen wakes the loop on jobs:insert and stops it on a breaking
// worker:migrate. When the driver cannot listen, polling does it all.
func (r *runner) listen(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		n, err := r.w.db.Listen(ctx, "jobs:insert", "worker:migrate")
		if errors.Is(err, ErrNotificationsUnsupported) {
			r.w.log.Info("gworker: driver cannot LISTEN; relying on polling", slog.Duration("poll_interval", r.w.opts.PollInterval))
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			r.w.log.Warn("gworker: LISTEN failed; will retry", slog.Any("error", err))
			sleepCtx(ctx, backoff(failures, 10*time.Second))
			continue
		}
		failures = 0
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
		case msg.Channel == "jobs:insert":
			r.wake(insertCount(msg.Payload))
		case msg.Channel == "worker:migrate":
			var m struct {
				MigrationNumber int  `json:"migrationNumber"`
				Breaking        bool `json:"breaking"`
			}
			if json.Unmarshal([]byte(msg.Payload), &m) == nil && m.Breaking {
				err := &BreakingMigrationError{Schema: r.w.opts.Schema, Migration: m.MigrationNumber}
				r.w.log.Error("gworker: breaking migration applied; shutting down", slog.Int("migration", m.MigrationNumber))
				select {
				case r.fatal <- err:
				default:
				}
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
