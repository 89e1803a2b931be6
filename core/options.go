package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
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
)

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
	// Concurrency is how many jobs run at once; 0 means runtime.NumCPU().
	Concurrency int
	// PollInterval is how often an idle worker polls for jobs when no
	// notification arrives; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// ForbiddenFlags: jobs carrying any of these flags are not fetched.
	ForbiddenFlags []string
	// ForbiddenFlagsFunc, if set, is called before each fetch and its flags
	// are added to ForbiddenFlags. An error skips that fetch and is logged.
	ForbiddenFlagsFunc func(ctx context.Context) ([]string, error)
	// UseLocalTime makes fetches compare run_at with this process's clock
	// instead of the database's now(), for when the two disagree.
	UseLocalTime bool
	// Logger receives the worker's logs; nil means slog.Default().
	Logger *slog.Logger
	// SkipMigrate stops Run and RunOnce from migrating the schema first.
	SkipMigrate bool
	// HandleSignals makes Run and RunOnce shut down gracefully on SIGINT or
	// SIGTERM, as well as when their context is cancelled.
	HandleSignals bool
	// GracePeriod is how long shutdown waits for running jobs before
	// cancelling their contexts; 0 means DefaultGracePeriod, negative means
	// cancel at once.
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
	// Clock returns the current time for UseLocalTime; nil means time.Now.
	Clock func() time.Time
}

// normalize validates the options and fills in defaults.
func (o WorkerOptions) normalize() (WorkerOptions, error) {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &ValidationError{Field: "WorkerOptions." + field, Value: value, Reason: reason})
	}
	if o.Database == nil {
		bad("Database", nil, "is required")
	}
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if err := checkSchemaName(o.Schema); err != nil {
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
	switch {
	case o.Concurrency == 0:
		o.Concurrency = runtime.NumCPU()
	case o.Concurrency < 0:
		bad("Concurrency", o.Concurrency, "must be positive (0 means the number of CPUs)")
	}
	switch {
	case o.PollInterval == 0:
		o.PollInterval = DefaultPollInterval
	case o.PollInterval < time.Millisecond:
		bad("PollInterval", o.PollInterval, "must be at least 1ms")
	}
	for i, f := range o.ForbiddenFlags {
		if f == "" {
			bad(fmt.Sprintf("ForbiddenFlags[%d]", i), f, "must not be empty")
		}
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
	if o.MinResetLockedInterval < 0 || o.MaxResetLockedInterval < o.MinResetLockedInterval {
		bad("MaxResetLockedInterval", o.MaxResetLockedInterval, "must be at least MinResetLockedInterval, and both positive")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o, errors.Join(errs...)
}
