package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"
)

// Dead-worker recovery. graphile-worker frees the locks of a crashed worker
// only after 4 hours. gworker workers also register in the schema's
// _private_gworker_workers table and refresh a heartbeat there; a sweeper on
// any live worker (one at a time per schema, across the cluster) returns the
// jobs and queues of workers whose heartbeat went stale. Only workers that
// registered are judged: a lock held by an id the registry does not know
// (a graphile-worker) is left to the 4-hour rule unless
// SweepForeignLocks says otherwise.

// Defaults of RecoveryOptions and SweepOptions.
const (
	// DefaultHeartbeatInterval is how often a worker refreshes its
	// heartbeat.
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultSweepInterval is how often a worker looks for dead workers.
	DefaultSweepInterval = time.Minute
	// DefaultStaleThreshold is how old a heartbeat must be for its worker to
	// count as dead.
	DefaultStaleThreshold = 5 * time.Minute
	// DefaultRecoveryDelay is how long a job returned by recovery waits
	// before it may run again, so that a job that crashes its worker does
	// not take down the next one at once.
	DefaultRecoveryDelay = 30 * time.Second
	// DefaultResilientMultiplier multiplies the threshold for jobs carrying
	// ResilientFlag.
	DefaultResilientMultiplier = 3
	// DefaultRecoveryAction is what recovery does with a dead worker's jobs.
	DefaultRecoveryAction = RecoveryReturn
)

// ResilientFlag marks a job (JobSpec.Flags) as one whose worker may stop
// heartbeating for a while without being dead, say because the job holds
// the process's CPU or the network is flaky: recovery waits the threshold ×
// ResilientMultiplier before returning it. It is an ordinary
// graphile-worker flag, stored as {"gworker:resilient": true}.
const ResilientFlag = "gworker:resilient"

// RecoveryAction says what recovery does with a dead worker's jobs.
type RecoveryAction string

const (
	// RecoveryReturn (the default) hands the job back as if it had never
	// been fetched: attempts - 1 (not below 0), unlocked, run_at =
	// max(run_at, now + delay), last_error saying the worker died.
	RecoveryReturn RecoveryAction = "return"
	// RecoveryFailWithBackoff records the attempt as failed, as if the
	// handler had returned an error: attempts kept, graphile-worker's
	// backoff, last_error saying the worker died. A job out of attempts
	// stays failed for good.
	RecoveryFailWithBackoff RecoveryAction = "fail_with_backoff"
	// RecoverySkip leaves dead workers' locks alone: graphile-worker's
	// 4-hour rule, force_unlock_workers or a manual sweep frees them. Dead
	// workers' rows are removed once they hold nothing.
	RecoverySkip RecoveryAction = "skip"
)

func (a RecoveryAction) valid() bool {
	return a == RecoveryReturn || a == RecoveryFailWithBackoff || a == RecoverySkip
}

// SweepPolicy is what a sweep of dead workers does: which workers count as
// dead, and what happens to their jobs. A worker's periodic sweeps take it
// from RecoveryOptions, a manual sweep from SweepOptions; its zero value
// means the defaults.
type SweepPolicy struct {
	// StaleThreshold is how old a heartbeat must be for its worker to count
	// as dead; 0 means DefaultStaleThreshold. A worker is never judged dead
	// before twice its own heartbeat interval, whatever the threshold.
	StaleThreshold time.Duration
	// Delay is how long a returned job waits before it may run again; 0
	// means DefaultRecoveryDelay, negative means it may run at once.
	Delay time.Duration
	// ResilientMultiplier multiplies StaleThreshold for jobs carrying
	// ResilientFlag; 0 means DefaultResilientMultiplier.
	ResilientMultiplier int
	// Action is what happens to a dead worker's jobs; "" means
	// RecoveryReturn. BeforeRecover hooks (Hooks) may decide otherwise for
	// each job.
	Action RecoveryAction
	// SweepForeignLocks also frees locks held by ids the registry does not
	// know (graphile-worker workers, or gworker workers with recovery
	// disabled) once locked_at is older than StaleThreshold (× the
	// multiplier for resilient jobs), instead of leaving them to the
	// 4-hour rule. Only turn it on if no such worker runs jobs longer than
	// that. Each sweep then reads the whole jobs table.
	SweepForeignLocks bool
}

// setDefaults fills in the defaults; a negative Delay becomes 0 (none).
func (p *SweepPolicy) setDefaults() {
	if p.StaleThreshold == 0 {
		p.StaleThreshold = DefaultStaleThreshold
	}
	switch {
	case p.Delay == 0:
		p.Delay = DefaultRecoveryDelay
	case p.Delay < 0:
		p.Delay = 0
	}
	if p.ResilientMultiplier == 0 {
		p.ResilientMultiplier = DefaultResilientMultiplier
	}
	if p.Action == "" {
		p.Action = DefaultRecoveryAction
	}
}

// validate checks a policy whose defaults are filled in; field names start
// with prefix.
func (p SweepPolicy) validate(prefix string) []error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ValidationError{Field: prefix + field, Value: value, Reason: reason})
	}
	if p.StaleThreshold < 0 {
		bad("StaleThreshold", p.StaleThreshold, "must not be negative")
	}
	if p.ResilientMultiplier < 1 {
		bad("ResilientMultiplier", p.ResilientMultiplier, "must be at least 1")
	}
	if !p.Action.valid() {
		bad("Action", string(p.Action), `must be "return", "fail_with_backoff" or "skip"`)
	}
	return errs
}

// RecoveryOptions configures a worker's part in dead-worker recovery. The
// zero value turns it on with the defaults.
//
// While Run or RunOnce runs, the worker has a row in the schema's
// _private_gworker_workers table (its ID, host, pid, version, start and last
// heartbeat), refreshed every HeartbeatInterval and deleted at a clean
// shutdown. Run also sweeps every SweepInterval: if no other worker of the
// schema is sweeping, it takes the workers whose heartbeat is older than
// StaleThreshold and applies the SweepPolicy to the jobs and named queues
// they hold, all in one transaction. RunOnce sweeps once, at start.
type RecoveryOptions struct {
	// Disabled turns recovery off: no row, no heartbeat, no sweep. Jobs of
	// crashed workers then wait for graphile-worker's 4-hour rule.
	Disabled bool
	// HeartbeatInterval is how often the worker refreshes its heartbeat; 0
	// means DefaultHeartbeatInterval. StaleThreshold must be at least twice
	// as long.
	HeartbeatInterval time.Duration
	// SweepInterval is how often Run looks for dead workers (jittered by
	// ±10%); 0 means DefaultSweepInterval.
	SweepInterval time.Duration
	// SweepPolicy is what the worker's sweeps do.
	SweepPolicy
}

// setDefaults fills in the defaults, the policy's included.
func (r *RecoveryOptions) setDefaults() {
	if r.HeartbeatInterval == 0 {
		r.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if r.SweepInterval == 0 {
		r.SweepInterval = DefaultSweepInterval
	}
	r.SweepPolicy.setDefaults()
}

// validate checks options whose defaults are filled in; WorkerOptions
// skips it when recovery is disabled.
func (r RecoveryOptions) validate() []error {
	const prefix = "WorkerOptions.Recovery."
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ValidationError{Field: prefix + field, Value: value, Reason: reason})
	}
	if r.HeartbeatInterval < time.Millisecond {
		bad("HeartbeatInterval", r.HeartbeatInterval, "must be at least 1ms")
	}
	if r.SweepInterval < time.Millisecond {
		bad("SweepInterval", r.SweepInterval, "must be at least 1ms")
	}
	if r.StaleThreshold >= 0 && r.StaleThreshold < 2*r.HeartbeatInterval {
		bad("StaleThreshold", r.StaleThreshold, fmt.Sprintf("must be at least twice HeartbeatInterval (%v), or one late heartbeat would make a live worker look dead", r.HeartbeatInterval))
	}
	return append(errs, r.SweepPolicy.validate(prefix)...)
}

// WorkerInfo is a registered gworker worker, as ListActiveWorkers reports
// it. Ages are measured on the database's clock.
type WorkerInfo struct {
	ID                string // the pool id it writes to locked_by
	Hostname          string
	PID               int
	Version           string // gworker's module version
	Concurrency       int
	RunOnce           bool
	HeartbeatInterval time.Duration
	StartedAt         time.Time
	LastHeartbeatAt   time.Time
	HeartbeatAge      time.Duration // how long ago the last heartbeat was
	// Stale says the heartbeat is older than the threshold asked for (or
	// twice the worker's own interval, if longer): a sweep would take the
	// worker for dead.
	Stale bool
	// LockedJobs is how many jobs the worker holds.
	LockedJobs int
}

// ListWorkersOptions configures ListActiveWorkers.
type ListWorkersOptions struct {
	// StaleThreshold decides WorkerInfo.Stale; 0 means
	// DefaultStaleThreshold.
	StaleThreshold time.Duration
}

func (o *ListWorkersOptions) setDefaults() {
	if o.StaleThreshold == 0 {
		o.StaleThreshold = DefaultStaleThreshold
	}
}

// validate checks options whose defaults are filled in.
func (o ListWorkersOptions) validate() error {
	if o.StaleThreshold < 0 {
		return &ValidationError{Field: "ListWorkersOptions.StaleThreshold", Value: o.StaleThreshold, Reason: "must not be negative"}
	}
	return nil
}

// ListActiveWorkers returns the registered gworker workers of the schema,
// oldest first: the running ones, and dead ones no sweep has removed yet
// (Stale). graphile-worker workers do not register and are not listed.
func (u *Utils) ListActiveWorkers(ctx context.Context, opts ListWorkersOptions) ([]WorkerInfo, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rows, err := u.ex.Query(ctx, newRecoverySQL(newRenderer(u.schema)).listWorkers, opts.StaleThreshold.Seconds())
	if err != nil {
		return nil, fmt.Errorf("gworker: list workers%s: %w", u.noRegistryHint(err), err)
	}
	defer rows.Close()
	var out []WorkerInfo
	for rows.Next() {
		var (
			w                WorkerInfo
			pid, concurrency int32
			interval, age    float64
			locked           int64
		)
		if err := rows.Scan(&w.ID, &w.Hostname, &pid, &w.Version, &concurrency, &w.RunOnce, &interval,
			&w.StartedAt, &w.LastHeartbeatAt, &age, &w.Stale, &locked); err != nil {
			return nil, fmt.Errorf("gworker: list workers: %w", err)
		}
		w.PID, w.Concurrency, w.LockedJobs = int(pid), int(concurrency), int(locked)
		w.HeartbeatInterval = seconds(interval)
		w.HeartbeatAge = seconds(age)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gworker: list workers: %w", err)
	}
	return out, nil
}

// SweepOptions configures SweepStaleWorkers. The zero value sweeps as a
// worker with default RecoveryOptions does.
type SweepOptions struct {
	// SweepPolicy is what the sweep does. BeforeRecover hooks come from the
	// client's UtilsOptions.
	SweepPolicy
	// DryRun changes nothing: the sweep runs in a transaction that is rolled
	// back, and the result says what it would have done.
	DryRun bool
}

func (o SweepOptions) normalize() (SweepOptions, error) {
	o.SweepPolicy.setDefaults()
	return o, errors.Join(o.SweepPolicy.validate("SweepOptions.")...)
}

// SweepResult is what a sweep did (or, for a dry run, would have done).
type SweepResult struct {
	// DryRun is true when the sweep only said what it would do
	// (SweepOptions.DryRun) and changed nothing.
	DryRun bool
	// WorkerIDs are the registered workers found dead, sorted.
	WorkerIDs []string
	// RemovedWorkerIDs are those whose registry row was removed: all but
	// the ones still holding resilient jobs within the longer window (or,
	// with RecoverySkip, any lock).
	RemovedWorkerIDs []string
	// ForeignWorkerIDs are the unregistered lockers whose locks were freed
	// (SweepForeignLocks), sorted.
	ForeignWorkerIDs []string
	// JobIDs are the jobs freed, sorted; Jobs is their number.
	JobIDs []int64
	Jobs   int
	// SkippedJobIDs are the jobs a BeforeRecover hook left locked
	// (RecoverSkip, or RecoverByDefault with RecoverySkip), sorted.
	SkippedJobIDs []int64
	// Queues is the number of named queues unlocked.
	Queues int
}

// SweepStaleWorkers frees the jobs and queues of dead gworker workers now,
// as a worker's periodic sweep does, and reports what it did. It waits for
// a sweep running elsewhere to finish rather than skipping, so that its
// result is complete. Each job is freed by exactly one sweep, however many
// run at once.
func (u *Utils) SweepStaleWorkers(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	o, err := opts.normalize()
	if err != nil {
		return SweepResult{}, err
	}
	res, _, err := u.sweep(ctx, o, "", false)
	res.DryRun = o.DryRun
	return res, err
}

// sweep runs one sweep in a transaction (a savepoint on a client bound to
// the caller's transaction). With try it gives up at once, ran = false,
// when another sweep of the schema holds the lock. self is a worker id never
// judged dead, "" for none.
func (u *Utils) sweep(ctx context.Context, o SweepOptions, self string, try bool) (res SweepResult, ran bool, err error) {
	s := newRecoverySQL(newRenderer(u.schema))
	err = u.inSweepTx(ctx, o.DryRun, func(ex Executor) error {
		lock := s.lock
		if try {
			lock = s.tryLock
		}
		if _, err := queryOne(ctx, ex, lock, []any{u.schema}, &ran); err != nil {
			return fmt.Errorf("take the sweep lock: %w", err)
		}
		if !ran {
			return nil
		}
		var selfID any
		if self != "" {
			selfID = self
		}
		rows, err := ex.Query(ctx, s.findDead, o.StaleThreshold.Seconds(), float64(o.ResilientMultiplier), selfID)
		if err != nil {
			return fmt.Errorf("find dead workers: %w", err)
		}
		dead := []string{}
		expired := []string{}
		for rows.Next() {
			var id string
			var past bool
			if err := rows.Scan(&id, &past); err != nil {
				rows.Close()
				return fmt.Errorf("find dead workers: %w", err)
			}
			dead = append(dead, id)
			if past {
				expired = append(expired, id)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("find dead workers: %w", err)
		}
		res.WorkerIDs = dead
		if len(dead) == 0 && !o.SweepForeignLocks {
			return nil
		}
		d := noRecoveryDecisions()
		hooked := u.hooks.recovers()
		if hooked {
			if d, err = u.askRecoveryHooks(ctx, ex, s, o, dead, expired); err != nil {
				return fmt.Errorf("read dead workers' jobs for the BeforeRecover hooks: %w", err)
			}
			res.SkippedJobIDs = d.skipped
		}
		rows, err = ex.Query(ctx, s.sweep, dead, expired, o.Delay.Seconds(), o.SweepForeignLocks,
			o.StaleThreshold.Seconds(), float64(o.ResilientMultiplier), ResilientFlag, string(o.Action),
			d.ids, d.actions, d.runAt, hooked)
		if err != nil {
			return fmt.Errorf("free dead workers' locks: %w", err)
		}
		foreign := map[string]bool{}
		runnable := 0
		for rows.Next() {
			var kind, locker string
			var id int64
			var now bool
			if err := rows.Scan(&kind, &id, &locker, &now); err != nil {
				rows.Close()
				return fmt.Errorf("free dead workers' locks: %w", err)
			}
			switch kind {
			case "job":
				res.JobIDs = append(res.JobIDs, id)
				if !slices.Contains(dead, locker) {
					foreign[locker] = true
				}
				if now {
					runnable++
				}
			case "queue":
				res.Queues++
			case "worker":
				res.RemovedWorkerIDs = append(res.RemovedWorkerIDs, locker)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("free dead workers' locks: %w", err)
		}
		for id := range foreign {
			res.ForeignWorkerIDs = append(res.ForeignWorkerIDs, id)
		}
		slices.Sort(res.ForeignWorkerIDs)
		slices.Sort(res.RemovedWorkerIDs)
		slices.Sort(res.JobIDs)
		res.Jobs = len(res.JobIDs)
		if runnable > 0 {
			// Some jobs may run at once: wake idle workers, as add_jobs does.
			payload := fmt.Sprintf(`{"r":%v,"count":%d}`, mathrand.Float64(), runnable)
			if _, err := ex.Exec(ctx, "select pg_notify('jobs:insert', $1)", payload); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return SweepResult{}, false, fmt.Errorf("gworker: sweep stale workers%s: %w", u.noRegistryHint(err), err)
	}
	return res, ran, nil
}

// noRegistryHint explains an error caused by a schema that lacks gworker's
// own tables (graphile-worker installed it and gworker never migrated it).
func (u *Utils) noRegistryHint(err error) string {
	if !isUndefined(err) {
		return ""
	}
	return fmt.Sprintf(" (schema %q lacks gworker's worker registry: migrate it with gworker first)", u.schema)
}

// inSweepTx runs fn in a transaction of its own, or in a savepoint of the
// caller's, and commits unless rollback is set or fn fails.
func (u *Utils) inSweepTx(ctx context.Context, rollback bool, fn func(Executor) error) (err error) {
	if u.db == nil {
		if _, err := u.ex.Exec(ctx, "savepoint gworker_sweep"); err != nil {
			return err
		}
		err = fn(u.ex)
		if err != nil || rollback {
			if _, rerr := u.ex.Exec(context.WithoutCancel(ctx), "rollback to savepoint gworker_sweep"); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		if err != nil {
			return err
		}
		_, err = u.ex.Exec(ctx, "release savepoint gworker_sweep")
		return err
	}
	tx, err := u.db.Begin(ctx)
	if err != nil {
		return err
	}
	if err = fn(tx); err != nil || rollback {
		return errors.Join(err, tx.Rollback(context.WithoutCancel(ctx)))
	}
	return tx.Commit(ctx)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// recovery is a worker's part in dead-worker recovery, as a service:
// Start registers the worker and starts its heartbeat and, for Run, its
// periodic sweep; RunOnce sweeps once, in Start, before it fetches. Stop
// ends both and removes the registration. With recovery disabled, or when
// the worker cannot register (SkipMigrate on a schema gworker never
// migrated, or a role without the privilege), it does nothing.
type recovery struct {
	w    *Worker
	once bool
	sql  *recoverySQL
	host string
	// detached is Start's context without its cancellation: heartbeats go
	// on through shutdown's grace period, while jobs finish, and the
	// registration is removed after them.
	detached   context.Context
	registered bool
	heartbeats routine
	sweeps     routine
}

func newRecovery(w *Worker, once bool) *recovery {
	host, _ := os.Hostname()
	return &recovery{w: w, once: once, sql: newRecoverySQL(newRenderer(w.opts.Schema)), host: host}
}

func (r *recovery) register(ctx context.Context) error {
	w, o := r.w, r.w.opts.Recovery
	args := []any{w.id, r.host, int32(os.Getpid()), buildVersion(), int32(w.opts.Concurrency), r.once, o.HeartbeatInterval.Seconds()}
	_, err := w.db.Exec(ctx, r.sql.register, append(args, nonNil(w.taskNames))...)
	if sqlState(err) == "42703" { // no tasks column yet: an older gworker migrated the schema
		_, err = w.db.Exec(ctx, r.sql.registerNoTasks, args...)
	}
	return err
}

func (r *recovery) Start(ctx context.Context) error {
	w, o := r.w, r.w.opts.Recovery
	if o.Disabled {
		return nil
	}
	if err := r.register(ctx); err != nil {
		if isUndefined(err) || sqlState(err) == "42501" {
			w.log.Warn("gworker: dead-worker recovery is off: the worker cannot register in the schema's _private_gworker_workers table; "+
				"run gworker's migrations (Migrate, or Run without SkipMigrate) with a role that may create it, and let this one write it",
				slog.String("schema", w.opts.Schema), slog.Any("error", err))
			return nil
		}
		return fmt.Errorf("gworker: register worker for dead-worker recovery: %w", err)
	}
	r.registered = true
	r.detached = context.WithoutCancel(ctx)
	sweepOpts := SweepOptions{SweepPolicy: o.SweepPolicy}
	r.heartbeats.start(r.detached, func(ctx context.Context) { w.heartbeat(ctx, r.sql, r.register) })
	if r.once {
		w.sweepOnce(ctx, sweepOpts)
	} else {
		r.sweeps.start(r.detached, func(ctx context.Context) { w.sweepLoop(ctx, sweepOpts) })
	}
	return nil
}

func (r *recovery) Stop() {
	if !r.registered {
		return
	}
	r.sweeps.stop()
	r.heartbeats.stop()
	w := r.w
	dctx, dcancel := context.WithTimeout(r.detached, 10*time.Second)
	defer dcancel()
	w.writeThroughput(dctx, r.sql.writeThroughput)
	n, err := w.db.Exec(dctx, r.sql.deregister, w.id)
	switch {
	case err != nil:
		w.log.Warn("gworker: removing the worker's registration failed; a sweep will remove it once it is stale", slog.Any("error", err))
	case n == 0:
		w.log.Warn("gworker: the worker still holds locks; its registration stays, and a sweep will free them once it is stale")
	}
}

// heartbeat refreshes the worker's row every HeartbeatInterval. When the row
// is gone, a sweeper took the worker for dead (its heartbeats were late) and
// handed its jobs to others: it says so and registers again. A heartbeat
// that fails is retried promptly, with backoff, not a full interval later:
// once the database is back, every live worker must show it lives before a
// sweeper's patience runs out.
func (w *Worker) heartbeat(ctx context.Context, s *recoverySQL, register func(context.Context) error) {
	o := w.opts.Recovery
	outage := newOutageLog(w.log, w.opts.Clock, "heartbeat")
	t := w.opts.Clock.NewTimer(o.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		// Past the threshold a heartbeat is of no use any more.
		bctx, cancel := context.WithTimeout(ctx, o.StaleThreshold)
		n, err := w.db.Exec(bctx, s.heartbeat, w.id)
		if err == nil && n == 0 {
			w.log.Error("gworker: this worker was taken for dead by a sweep (its heartbeats were late); " +
				"the jobs it was running were handed to other workers and may run twice, and their outcomes " +
				"are recorded only where no other worker locked them since; registering again")
			err = register(bctx)
		}
		if err == nil {
			w.writeThroughput(bctx, s.writeThroughput)
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.health.noteLoss(w.opts.Clock.Now())
			failures := outage.failed(err)
			t.Reset(backoff(failures, min(o.HeartbeatInterval, time.Second)))
		default:
			outage.ok()
			t.Reset(o.HeartbeatInterval)
		}
	}
}

// sweepLoop sweeps at once, then every SweepInterval ± 10%.
func (w *Worker) sweepLoop(ctx context.Context, o SweepOptions) {
	interval := w.opts.Recovery.SweepInterval
	t := w.opts.Clock.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		w.sweepOnce(ctx, o)
		jitter := time.Duration((0.9 + 0.2*mathrand.Float64()) * float64(interval))
		t.Reset(jitter)
	}
}

func (w *Worker) sweepOnce(ctx context.Context, o SweepOptions) {
	// Other workers' heartbeats stop while the database is away, as this
	// worker's do: a gap that this worker's own loss of the database
	// explains is no evidence of their death. Judge them only after the
	// database has answered this worker for a whole threshold, long enough
	// for every live worker to have heartbeat again.
	if stable := w.health.stableFor(w.opts.Clock.Now()); stable < o.StaleThreshold {
		w.log.Debug("gworker: not sweeping dead workers yet: this worker lost the database recently",
			slog.Duration("stable_for", stable), slog.Duration("threshold", o.StaleThreshold))
		return
	}
	res, ran, err := w.utils.sweep(ctx, o, w.id, true)
	if err != nil {
		if ctx.Err() == nil {
			w.health.noteLoss(w.opts.Clock.Now())
			w.sweepOutage.failed(err)
		}
		return
	}
	w.sweepOutage.ok()
	switch {
	case !ran:
		w.log.Debug("gworker: another worker is sweeping dead workers")
	case res.Jobs > 0 || len(res.RemovedWorkerIDs) > 0:
		w.log.Warn("gworker: dead workers found; their jobs were recovered",
			slog.Any("dead_workers", res.WorkerIDs), slog.Any("foreign_lockers", res.ForeignWorkerIDs),
			slog.Int("jobs", res.Jobs), slog.Int("queues", res.Queues), slog.String("action", string(o.Action)))
	case len(res.WorkerIDs) > 0:
		// Dead, but holding only resilient jobs within their longer window
		// (or, with RecoverySkip, locks left alone): nothing new to say.
		w.log.Debug("gworker: dead workers still hold jobs that are not recovered yet", slog.Any("dead_workers", res.WorkerIDs))
	}
}

// buildVersion is gworker's module version as the binary records it.
var buildVersion = sync.OnceValue(func() string {
	const module = "github.com/gworker/gworker"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if bi.Main.Path == module {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == module {
			return d.Version
		}
	}
	return ""
})
