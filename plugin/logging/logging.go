package logging

import (
	"context"
	"log/slog"

	"github.com/gworker/gworker/core"
)

// Options configures the plugin. The zero value logs to slog.Default() with
// routine job events at Info.
type Options struct {
	// Logger receives the records; nil means slog.Default().
	Logger *slog.Logger
	// JobLevel is the level of routine events: job start, success and
	// skip, worker start and stop, cron schedules. The zero value is
	// slog.LevelInfo; slog.LevelDebug quiets a busy worker's log.
	JobLevel slog.Level
}

// New returns the logging plugin.
func New(opts Options) core.Plugin {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &plugin{log: opts.Logger, routine: opts.JobLevel}
}

type plugin struct {
	log     *slog.Logger
	routine slog.Level
}

func (p *plugin) Name() string { return "logging" }

func (p *plugin) Hooks() core.Hooks { return core.Hooks{OnEvent: p.onEvent} }

// job returns the attributes of a job.
func job(j *core.Job, attrs []slog.Attr) []slog.Attr {
	attrs = append(attrs, slog.String("worker", j.LockedBy), slog.Int64("job_id", j.ID), slog.String("task", j.TaskIdentifier))
	if j.QueueName != "" {
		attrs = append(attrs, slog.String("queue", j.QueueName))
	}
	return append(attrs, slog.Int("attempts", j.Attempts), slog.Int("max_attempts", j.MaxAttempts))
}

func (p *plugin) onEvent(ctx context.Context, e core.Event) {
	level, msg := p.describe(e)
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("event", e.EventName()))
	switch e := e.(type) {
	case core.WorkerStarted:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.String("schema", e.Schema),
			slog.Int("concurrency", e.Concurrency), slog.Bool("once", e.Once), slog.Any("tasks", e.Tasks))
	case core.WorkerShutdown:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.String("reason", string(e.Reason)),
			slog.Int("running", e.Running), slog.Int("buffered", e.Buffered))
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
	case core.WorkerStopped:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.String("schema", e.Schema))
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
	case core.FetchStarted:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.Int("asked", e.Asked))
	case core.FetchFailed:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.Int("asked", e.Asked), slog.String("error", e.Err.Error()),
			slog.Int("failures", e.Failures), slog.Duration("retry_in", e.RetryIn))
	case core.JobsFetched:
		attrs = append(attrs, slog.String("worker", e.WorkerID), slog.Int("asked", e.Asked), slog.Int("got", len(e.Jobs)))
	case core.JobStarted:
		attrs = job(e.Job, attrs)
	case core.JobCompleted:
		attrs = append(job(e.Job, attrs), slog.Duration("duration", e.Duration))
	case core.JobFailed:
		attrs = append(job(e.Job, attrs), slog.Duration("duration", e.Duration), slog.String("error", e.Message),
			slog.Bool("will_retry", e.WillRetry))
	case core.JobPermanentlyFailed:
		attrs = append(job(e.Job, attrs), slog.String("error", e.Message))
	case core.JobSnoozed:
		attrs = append(job(e.Job, attrs), slog.Duration("duration", e.Duration), slog.Duration("delay", e.Delay))
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
	case core.JobInterrupted:
		attrs = append(job(e.Job, attrs), slog.Duration("duration", e.Duration), slog.Bool("abandoned", e.Abandoned))
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()))
		}
	case core.JobCancelled:
		attrs = append(job(e.Job, attrs), slog.String("reason", e.Reason), slog.Duration("duration", e.Duration))
	case core.JobSkipped:
		attrs = append(job(e.Job, attrs), slog.String("plugin", e.Hook))
	case core.JobAdded:
		attrs = append(attrs, slog.Int64("job_id", e.Job.ID), slog.String("task", e.Job.TaskIdentifier),
			slog.String("source", string(e.Source)), slog.Time("run_at", e.Job.RunAt))
		if e.Job.QueueName != "" {
			attrs = append(attrs, slog.String("queue", e.Job.QueueName))
		}
	case core.LocalQueueEvent:
		attrs = append(attrs, slog.String("worker", e.WorkerID))
		switch e.Change {
		case core.RefetchDelayStarted:
			attrs = append(attrs, slog.Duration("delay", e.Delay), slog.Int("abort_after", e.AbortAfter))
		case core.RefetchDelayAborted:
			attrs = append(attrs, slog.Int("announced", e.Announced))
		case core.LocalQueueTTLExpired, core.LocalQueueReleased:
			ids := make([]int64, len(e.Jobs))
			for i, j := range e.Jobs {
				ids[i] = j.ID
			}
			attrs = append(attrs, slog.Any("job_ids", ids))
		}
	case core.CronEvent:
		if !e.Minute.IsZero() {
			attrs = append(attrs, slog.Time("minute", e.Minute))
		}
		if len(e.Entries) > 0 {
			attrs = append(attrs, slog.Any("entries", e.Entries))
		}
		if e.Kind == core.CronScheduled || e.Kind == core.CronBackfill {
			attrs = append(attrs, slog.Any("fired", e.Fired))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("error", e.Err.Error()), slog.Duration("delay", e.Delay))
		}
	}
	p.log.LogAttrs(ctx, level, msg, attrs...)
}

// describe returns an event's level and message.
func (p *plugin) describe(e core.Event) (slog.Level, string) {
	switch e := e.(type) {
	case core.WorkerStarted:
		return p.routine, "gworker: worker started"
	case core.WorkerShutdown:
		return p.routine, "gworker: worker shutting down"
	case core.WorkerStopped:
		if e.Err != nil {
			return slog.LevelError, "gworker: worker stopped with an error"
		}
		return p.routine, "gworker: worker stopped"
	case core.FetchStarted:
		return slog.LevelDebug, "gworker: fetching jobs"
	case core.FetchFailed:
		// Debug: the worker's own log says it once per outage, not per retry.
		return slog.LevelDebug, "gworker: fetching jobs failed"
	case core.JobsFetched:
		return slog.LevelDebug, "gworker: jobs fetched"
	case core.JobStarted:
		return p.routine, "gworker: job started"
	case core.JobCompleted:
		return p.routine, "gworker: job completed"
	case core.JobFailed:
		if e.WillRetry {
			return slog.LevelWarn, "gworker: job failed; will retry"
		}
		return slog.LevelWarn, "gworker: job failed at its last attempt"
	case core.JobPermanentlyFailed:
		return slog.LevelError, "gworker: job permanently failed"
	case core.JobSnoozed:
		return p.routine, "gworker: job snoozed; it runs again later"
	case core.JobInterrupted:
		return slog.LevelWarn, "gworker: job interrupted by shutdown"
	case core.JobCancelled:
		return slog.LevelWarn, "gworker: job cancelled"
	case core.JobSkipped:
		return p.routine, "gworker: job skipped by a hook"
	case core.JobAdded:
		return slog.LevelDebug, "gworker: job added"
	case core.LocalQueueEvent:
		return slog.LevelDebug, "gworker: local queue " + string(e.Change)
	case core.CronEvent:
		switch e.Kind {
		case core.CronError:
			return slog.LevelError, "gworker: cron failed"
		case core.CronOverdueTimer, core.CronPrematureTimer:
			return slog.LevelWarn, "gworker: " + string(e.Kind)
		case core.CronScheduled, core.CronBackfill, core.CronStarted:
			return p.routine, "gworker: " + string(e.Kind)
		}
		return slog.LevelDebug, "gworker: " + string(e.Kind)
	}
	return slog.LevelDebug, "gworker: " + e.EventName()
}
