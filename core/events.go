package core

import "time"

// Event is something that happened in a worker or client, given to
// Hooks.OnEvent. The events are the types in this package whose
// EventName method is listed below, CronEvent included; use a type switch:
//
//	OnEvent: func(ctx context.Context, e core.Event) {
//		switch e := e.(type) {
//		case core.JobCompleted:
//			metrics.observe(e.Job.TaskIdentifier, e.Duration)
//		case core.JobFailed:
//			...
//		}
//	}
//
// A successful job yields JobsFetched, JobStarted, JobCompleted; a failed one
// JobsFetched, JobStarted, JobFailed, and JobPermanentlyFailed when it has no
// attempts left or its handler failed it for good; a snoozed one (RetryAfter)
// JobsFetched, JobStarted, JobSnoozed. Events about one job arrive in order; events about
// different jobs may arrive concurrently.
type Event interface {
	// EventName returns the event's name, such as "job:success"; the names
	// follow graphile-worker's events where one exists.
	EventName() string
}

// WorkerStarted: Run or RunOnce started (after migrating and registering
// tasks), before the first fetch. Utils is the worker's client, on its
// database and schema.
type WorkerStarted struct {
	WorkerID    string
	Schema      string
	Concurrency int
	Once        bool     // RunOnce
	Tasks       []string // the task identifiers it runs
	Utils       *Utils
}

// ShutdownReason says why a worker stopped fetching jobs.
type ShutdownReason string

const (
	// ShutdownCancelled: Run's context was cancelled (or a signal arrived
	// under HandleSignals).
	ShutdownCancelled ShutdownReason = "cancelled"
	// ShutdownDrained: RunOnce found no more runnable jobs.
	ShutdownDrained ShutdownReason = "drained"
	// ShutdownFatal: the worker cannot go on (Err says why, such as a
	// *BreakingMigrationError).
	ShutdownFatal ShutdownReason = "fatal"
)

// WorkerShutdown: the worker stopped fetching and begins its shutdown:
// Running jobs get the grace period, Buffered ones (local queue) go back.
// Err is the context's cause (ShutdownCancelled) or the fatal error.
type WorkerShutdown struct {
	WorkerID string
	Reason   ShutdownReason
	Err      error
	Running  int
	Buffered int
}

// WorkerStopped: Run or RunOnce is about to return Err; every outcome has
// been recorded.
type WorkerStopped struct {
	WorkerID string
	Schema   string
	Err      error
}

// FetchStarted: the worker asks the database for up to Asked jobs.
// JobsFetched or FetchFailed follows.
type FetchStarted struct {
	WorkerID string
	Asked    int
}

// FetchFailed: a fetch of up to Asked jobs failed with Err: the database
// could not be reached or refused the statement. Failures counts the
// fetches that failed in a row; the worker tries again after RetryIn, or
// sooner on a notification. Jobs the fetch may have locked while its answer
// was lost are looked for before the next fetch, and handed back.
type FetchFailed struct {
	WorkerID string
	Asked    int
	Err      error
	Failures int
	RetryIn  time.Duration
}

// JobsFetched: a fetch asked for up to Asked jobs and locked Jobs (perhaps
// none).
type JobsFetched struct {
	WorkerID string
	Asked    int
	Jobs     []*Job
}

// JobStarted: the job's handler is about to run (BeforeJobRun hooks
// continued). Job.Attempts counts this attempt; Job.LockedBy is the worker.
type JobStarted struct {
	Job *Job
}

// JobCompleted: the handler succeeded; the job is deleted.
type JobCompleted struct {
	Job      *Job
	Duration time.Duration
}

// JobFailed: the handler failed (or a hook failed the job); Message is
// recorded as last_error. WillRetry is false when the job has no attempts
// left, in which case JobPermanentlyFailed follows.
type JobFailed struct {
	Job       *Job
	Err       error
	Message   string
	Duration  time.Duration
	WillRetry bool
}

// JobPermanentlyFailed: the job failed at its last attempt, or its handler
// failed it for good (FailPermanently); it stays in the table, never to run
// again unless rescheduled.
type JobPermanentlyFailed struct {
	Job     *Job
	Err     error
	Message string
}

// JobSnoozed: the handler returned RetryAfter (or a batch's failed items
// were all snoozed or failed for good): the job runs again after Delay, its
// attempt not counted. Err is the handler's error.
type JobSnoozed struct {
	Job      *Job
	Err      error
	Delay    time.Duration
	Duration time.Duration
}

// JobInterrupted: shutdown cancelled the job's context and the job goes
// back to the queue, its attempt not counted. Abandoned means the handler
// ignored the cancellation and still runs; its result will be ignored.
type JobInterrupted struct {
	Job       *Job
	Err       error
	Duration  time.Duration
	Abandoned bool
}

// JobCancelled: Utils.CancelJob cancelled the job; it is failed for good with
// Reason. Duration is zero for a job cancelled before it started.
type JobCancelled struct {
	Job      *Job
	Reason   string
	Duration time.Duration
}

// JobSkipped: a BeforeJobRun hook (of plugin Hook) skipped the job; it goes
// back to the queue untouched.
type JobSkipped struct {
	Job  *Job
	Hook string
}

// JobAdded: a client call added Job (AddJob, AddRawJob, AddJobs,
// AddBatchJob). It is reported with the context AroundAdd hooks passed on,
// before the call returns. Cron's jobs are reported by CronEvent instead.
type JobAdded struct {
	Job    *Job
	Source AddSource
}

// LocalQueueChange names a LocalQueueEvent.
type LocalQueueChange string

const (
	// RefetchDelayStarted: a fetch returned few jobs, so the next waits
	// Delay, unless more than AbortAfter new jobs are announced.
	RefetchDelayStarted LocalQueueChange = "localQueue:refetchDelay:start"
	// RefetchDelayAborted: Announced jobs ended the delay early.
	RefetchDelayAborted LocalQueueChange = "localQueue:refetchDelay:abort"
	// RefetchDelayExpired: the delay is over; fetching resumes.
	RefetchDelayExpired LocalQueueChange = "localQueue:refetchDelay:expired"
	// LocalQueueTTLExpired: Jobs waited too long in the local queue and
	// went back to the database untouched.
	LocalQueueTTLExpired LocalQueueChange = "localQueue:ttlExpired"
	// LocalQueueReleased: shutdown handed the waiting Jobs back untouched.
	LocalQueueReleased LocalQueueChange = "localQueue:release"
)

// LocalQueueEvent: the local queue (WorkerOptions.LocalQueue) changed mode
// or handed jobs back.
type LocalQueueEvent struct {
	WorkerID   string
	Change     LocalQueueChange
	Delay      time.Duration // RefetchDelayStarted
	AbortAfter int           // RefetchDelayStarted
	Announced  int           // RefetchDelayAborted
	Jobs       []*Job        // LocalQueueTTLExpired, LocalQueueReleased
}

// EventName implements Event.
func (WorkerStarted) EventName() string { return "worker:start" }

// EventName implements Event.
func (WorkerShutdown) EventName() string { return "worker:shutdown" }

// EventName implements Event.
func (WorkerStopped) EventName() string { return "worker:stop" }

// EventName implements Event.
func (FetchStarted) EventName() string { return "worker:getJob:start" }

// EventName implements Event.
func (FetchFailed) EventName() string { return "worker:getJob:error" }

// EventName implements Event.
func (JobsFetched) EventName() string { return "worker:fetch" }

// EventName implements Event.
func (JobStarted) EventName() string { return "job:start" }

// EventName implements Event.
func (JobCompleted) EventName() string { return "job:success" }

// EventName implements Event.
func (JobFailed) EventName() string { return "job:error" }

// EventName implements Event.
func (JobPermanentlyFailed) EventName() string { return "job:failed" }

// EventName implements Event.
func (JobSnoozed) EventName() string { return "job:snoozed" }

// EventName implements Event.
func (JobInterrupted) EventName() string { return "job:interrupted" }

// EventName implements Event.
func (JobCancelled) EventName() string { return "job:cancelled" }

// EventName implements Event.
func (JobSkipped) EventName() string { return "job:skipped" }

// EventName implements Event.
func (JobAdded) EventName() string { return "job:added" }

// EventName implements Event.
func (e LocalQueueEvent) EventName() string { return string(e.Change) }

// EventName implements Event: the cron event's kind, such as "cron:tick".
func (e CronEvent) EventName() string { return string(e.Kind) }
