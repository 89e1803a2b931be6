package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gworker/gworker/cronspec"
)

// Defaults of WorkerOptions.
const (
	// DefaultPollInterval is how often an idle worker looks for jobs when no
	// notification woke it, as in graphile-worker.
	DefaultPollInterval = 2 * time.Second
	// DefaultGracePeriod is how long a shutdown waits for running jobs
	// before cancelling their contexts.
	DefaultGracePeriod = 5 * time.Second
	// DefaultInterruptedRetryDelay is how long a job interrupted by shutdown
	// waits before it may run again.
	DefaultInterruptedRetryDelay = 30 * time.Second
	// DefaultMinResetLockedInterval and DefaultMaxResetLockedInterval bound
	// the jittered period of the sweep that frees locks older than 4 hours.
	DefaultMinResetLockedInterval = 8 * time.Minute
	DefaultMaxResetLockedInterval = 10 * time.Minute
	// DefaultLocalQueueTTL is how long the local queue holds a job no slot
	// took before handing it back.
	DefaultLocalQueueTTL = 5 * time.Minute
	// DefaultConcurrency is how many jobs a worker runs at once unless told
	// otherwise. Jobs mostly wait on I/O (HTTP calls, mail, queries), so a
	// worker runs more of them than it has CPUs; a slot costs a goroutine,
	// and connections only when the handler uses them.
	DefaultConcurrency = 16
	// DefaultLocalQueueMaxSize bounds the batches of an adaptive local
	// queue (LocalQueueOptions.Size 0). Past a few hundred jobs a bigger
	// fetch saves little: most of its time is spent per row.
	DefaultLocalQueueMaxSize = 1000
)

// LocalQueueOptions configures the local queue: one fetch locks a batch of
// jobs for the whole worker, and slots take them from memory, so a busy
// worker asks the database for work far less often and the next batch is
// already there when a slot frees.
//
// It is on by default, with batches that adapt to demand. The zero value
// starts with no batch: a fetch asks for the free slots only. After a full
// fetch during which a job finished, the batch becomes Concurrency jobs;
// it doubles after each full fetch while a slot waited for it, up to
// DefaultLocalQueueMaxSize, where slots that still wait make the next
// fetch start as soon as one returns; it halves after a short fetch, or
// one during which nothing finished, and below Concurrency it is gone
// again. An idle or lightly loaded worker thus locks no more jobs than it
// has slots, and a worker with a backlog fetches in batches big enough to
// keep every slot busy.
type LocalQueueOptions struct {
	// Disabled turns the local queue off: each fetch then asks for as many
	// jobs as there are free slots, and a busy worker fetches once per
	// handful of jobs.
	Disabled bool
	// Size fixes how many jobs one fetch may lock, instead of adapting; 0
	// adapts. The next fetch starts when half a batch is left waiting, so
	// that slots never wait for it: up to 1.5 batches may wait locked in
	// memory. It should be at least the concurrency; bigger batches help
	// throughput when jobs are short.
	Size int
	// TTL is how long a fetched job may wait in the local queue; jobs still
	// waiting then go back to the database (attempt not counted, run_at
	// unchanged). 0 means DefaultLocalQueueTTL.
	TTL time.Duration
	// RefetchDelay spaces out fetches while there is little work.
	RefetchDelay RefetchDelayOptions
}

// RefetchDelayOptions: after a fetch that returned at most Threshold jobs,
// wait (0.5 to 1.5) × Duration before fetching again, unless notifications
// announce more than a random share of MaxAbortThreshold new jobs. The zero
// value (Duration 0) fetches again as soon as there is reason to.
type RefetchDelayOptions struct {
	Duration time.Duration
	// Threshold: fetches returning at most this many jobs start a delay.
	Threshold int
	// MaxAbortThreshold bounds the random number of announced jobs that
	// ends a delay early; 0 means 5 × LocalQueueOptions.Size.
	MaxAbortThreshold int
}

// WorkerOptions configures a Worker. Zero values mean the documented
// defaults; only Database and Tasks are required.
type WorkerOptions struct {
	// Database is the connection pool; required.
	Database Database
	// Schema is the graphile-worker schema; "" means DefaultSchema.
	Schema string
	// Tasks are the tasks this worker runs. Jobs of other tasks are never
	// fetched. Identifiers must be unique and handlers non-nil.
	Tasks []Task
	// Concurrency is how many jobs run at once; 0 means DefaultConcurrency.
	Concurrency int
	// PollInterval is how often an idle worker polls for jobs when no
	// notification arrives; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// RequireNotifications makes a driver that cannot LISTEN (built
	// poll-only) an error: Run stops and returns an error wrapping
	// ErrNotificationsUnsupported. Without it such a worker logs a warning
	// once and finds jobs by polling alone, up to PollInterval late.
	RequireNotifications bool
	// ForbiddenFlags: jobs carrying any of these flags are not fetched.
	ForbiddenFlags []string
	// ForbiddenFlagsFunc, if set, is called before each fetch and its flags
	// are added to ForbiddenFlags. An error skips that fetch and is logged.
	ForbiddenFlagsFunc func(ctx context.Context) ([]string, error)
	// UseLocalTime makes fetches compare run_at with this process's clock
	// instead of the database's now(), for when the two disagree.
	UseLocalTime bool
	// DurableFetch makes each fetch wait until its commit is on disk. By
	// default a fetch commits with synchronous_commit off (for that one
	// transaction only), which saves a WAL flush per fetch: a crash of the
	// database server may then forget the most recent fetches, and their
	// jobs, unlocked with the attempt not counted, run again, exactly as
	// after a crash of the worker. Nothing is lost: the outcome of a job is
	// always committed durably, and WAL is flushed in order, so a recorded
	// outcome is never older than a forgotten fetch.
	DurableFetch bool
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// SkipMigrate stops Run and RunOnce from migrating the schema first.
	SkipMigrate bool
	// HandleSignals makes Run and RunOnce shut down gracefully on SIGINT or
	// SIGTERM, as well as when their context is cancelled.
	HandleSignals bool
	// GracePeriod is how long shutdown waits for running jobs before
	// cancelling their contexts; 0 means DefaultGracePeriod, negative means
	// cancel at once. When the database is away at shutdown, it is also
	// how long (at least a second) shutdown keeps trying to record
	// outcomes, and then to return jobs a fetch may have locked without
	// its answer reaching the worker.
	GracePeriod time.Duration
	// InterruptedRetryDelay is how long a job interrupted by shutdown waits
	// before it may run again; 0 means DefaultInterruptedRetryDelay,
	// negative means it may run at once.
	InterruptedRetryDelay time.Duration
	// MinResetLockedInterval and MaxResetLockedInterval bound the jittered
	// period of the sweep that frees jobs and queues locked more than 4 hours
	// ago (a crashed worker's); 0 means the defaults. The first sweep runs
	// at a random moment within min(1 minute, MaxResetLockedInterval).
	MinResetLockedInterval time.Duration
	MaxResetLockedInterval time.Duration
	// Clock is the worker's source of time for everything it schedules:
	// polls and fetch backoff, run_at under UseLocalTime, the local queue,
	// LISTEN's backoff, outcome recording, heartbeats, sweeps, the
	// stale-lock reset, cron, the shutdown grace period, and job and outage
	// durations. Only the deadlines of single statements, Migrate's wait
	// for another migrator and the database's now() keep to the system
	// clock; Clock's doc lists it all. nil means the system clock; tests
	// use a fake one.
	Clock Clock
	// LocalQueue fetches jobs in batches for the whole worker; see
	// LocalQueueOptions. On by default, with batches that adapt to demand.
	LocalQueue LocalQueueOptions
	// CompleteJobBatchDelay and FailJobBatchDelay: outcomes are always
	// recorded in batches (whatever accumulates while one statement runs
	// goes out together in the next); a positive delay also waits that long
	// after the first outcome to gather more, trading latency of the
	// recording (jobs stay locked meanwhile) for fewer statements. 0 means
	// no waiting.
	CompleteJobBatchDelay time.Duration
	FailJobBatchDelay     time.Duration

	// Crontab is a crontab in graphile-worker's format (see package
	// cronspec): Run schedules its entries, each matching minute once
	// across all workers, Node ones included. A crontab that does not parse
	// makes NewWorker fail with an error that errors.As turns into a
	// *cronspec.ParseError. "" means none.
	Crontab string
	// Schedules are more cron entries, built in Go (cronspec.DailyAt and
	// the others) or parsed; they run alongside Crontab's. Identifiers must
	// be unique across both.
	Schedules []cronspec.Entry

	// Recovery configures dead-worker recovery: heartbeats in gworker's own
	// registry and a sweep that returns the jobs of workers whose heartbeat
	// went stale. On by default; see RecoveryOptions.
	Recovery RecoveryOptions

	// Plugins add hooks: logging, tracing, metrics (see gworker's plugin
	// directory), or your own; see Plugin and Hooks. Their hooks run in
	// this order, before those of Hooks.
	Plugins []Plugin
	// Hooks are single hooks of the application's own; see Hooks.
	Hooks Hooks
	// Extensions are typed application state for handlers and hooks to
	// read with LookupExtension or ExtensionFromContext; one per type.
	Extensions []Extension

	cron cronspec.Crontab // Crontab and Schedules, checked by normalize
}

// maxBatch is the most jobs one fetch of the local queue asks for.
func (lq LocalQueueOptions) maxBatch(concurrency int) int {
	if lq.Size > 0 {
		return lq.Size
	}
	return max(concurrency, DefaultLocalQueueMaxSize)
}

// normalize fills in the defaults and checks the options.
func (o WorkerOptions) normalize() (WorkerOptions, error) {
	o.setDefaults()
	return o, errors.Join(o.validate()...)
}

// setDefaults fills in the defaults of the options left zero: the one place
// where they are filled. Recovery's are RecoveryOptions.setDefaults'.
func (o *WorkerOptions) setDefaults() {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.InterruptedRetryDelay == 0 {
		o.InterruptedRetryDelay = DefaultInterruptedRetryDelay
	}
	if o.MinResetLockedInterval == 0 {
		o.MinResetLockedInterval = DefaultMinResetLockedInterval
	}
	if o.MaxResetLockedInterval == 0 {
		o.MaxResetLockedInterval = DefaultMaxResetLockedInterval
	}
	// The local queue's knobs mean something only when it is on; left
	// zero otherwise, they keep the refetch delay's checks as they were.
	if lq := &o.LocalQueue; !lq.Disabled {
		if lq.TTL == 0 {
			lq.TTL = DefaultLocalQueueTTL
		}
		if lq.RefetchDelay.MaxAbortThreshold == 0 {
			lq.RefetchDelay.MaxAbortThreshold = 5 * lq.maxBatch(o.Concurrency)
		}
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	o.Recovery.setDefaults()
}

// validate checks options whose defaults are filled in, and reports every
// invalid one. Checking the cron entries parses them, so it also keeps
// them, in o.cron.
func (o *WorkerOptions) validate() []error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ValidationError{Field: "WorkerOptions." + field, Value: value, Reason: reason})
	}
	if o.Database == nil {
		bad("Database", nil, "is required")
	}
	if err := checkSchemaName("WorkerOptions.Schema", o.Schema); err != nil {
		bad("Schema", o.Schema, err.(*ValidationError).Reason)
	}
	if len(o.Tasks) == 0 {
		bad("Tasks", nil, "needs at least one task")
	}
	seen := map[string]int{}
	for i, t := range o.Tasks {
		field := fmt.Sprintf("Tasks[%d]", i)
		if err := checkIdentifier(field, t.identifier); err != nil {
			var ve *ValidationError
			errors.As(err, &ve)
			bad(field, t.identifier, "identifier "+ve.Reason)
			continue
		}
		if t.run == nil {
			bad(field, t.identifier, "has a nil handler")
		}
		if j, dup := seen[t.identifier]; dup {
			bad(field, t.identifier, fmt.Sprintf("is registered twice (also Tasks[%d])", j))
		}
		seen[t.identifier] = i
	}
	if o.Concurrency < 0 {
		bad("Concurrency", o.Concurrency, "must be positive (0 means DefaultConcurrency)")
	}
	if o.PollInterval < time.Millisecond {
		bad("PollInterval", o.PollInterval, "must be at least 1ms")
	}
	for i, f := range o.ForbiddenFlags {
		if f == "" {
			bad(fmt.Sprintf("ForbiddenFlags[%d]", i), f, "must not be empty")
		}
	}
	if o.MinResetLockedInterval < 0 || o.MaxResetLockedInterval < o.MinResetLockedInterval {
		bad("MaxResetLockedInterval", o.MaxResetLockedInterval, "must be at least MinResetLockedInterval, and both positive")
	}
	lq := o.LocalQueue
	switch {
	case lq.Disabled:
	case lq.Size < 0:
		bad("LocalQueue.Size", lq.Size, "must not be negative (0 adapts the batch to demand; Disabled turns the local queue off)")
	default:
		if lq.Size > 0 && lq.Size < o.Concurrency {
			o.Logger.Warn("gworker: LocalQueue.Size is smaller than Concurrency; some slots will wait for the next fetch",
				slog.Int("size", lq.Size), slog.Int("concurrency", o.Concurrency))
		}
		if lq.TTL < 0 {
			bad("LocalQueue.TTL", lq.TTL, "must be positive")
		}
	}
	if lq.RefetchDelay.Duration < 0 || lq.RefetchDelay.Duration > o.PollInterval {
		bad("LocalQueue.RefetchDelay.Duration", lq.RefetchDelay.Duration, "must be between 0 and PollInterval")
	}
	if lq.RefetchDelay.Threshold < 0 || lq.RefetchDelay.MaxAbortThreshold < 0 {
		bad("LocalQueue.RefetchDelay", lq.RefetchDelay, "thresholds must not be negative")
	}
	if o.CompleteJobBatchDelay < 0 {
		bad("CompleteJobBatchDelay", o.CompleteJobBatchDelay, "must not be negative")
	}
	if o.FailJobBatchDelay < 0 {
		bad("FailJobBatchDelay", o.FailJobBatchDelay, "must not be negative")
	}
	var cronErrs []error
	o.cron, cronErrs = checkCron(o.Crontab, o.Schedules)
	errs = append(errs, cronErrs...)
	if !o.Recovery.Disabled {
		errs = append(errs, o.Recovery.validate()...)
	}
	return append(errs, checkHookOptions(o)...)
}
