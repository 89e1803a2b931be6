// Package core is gworker's engine: a PostgreSQL job queue that shares its
// database contract with graphile-worker 0.18 (Node.js).
//
// # The contract
//
// Migrate (or Utils.Migrate) installs graphile-worker's schema — tables,
// the jobs view, the job_spec type and the SQL functions add_job, add_jobs,
// complete_jobs, permanently_fail_jobs, reschedule_jobs, remove_job and
// force_unlock_workers — and writes the same migrations ledger, so a
// graphile-worker 0.18 sees the schema as up to date, and the other way
// round. Jobs added by either tool, or by SQL such as a trigger calling
// graphile_worker.add_job(...), are run by either, with the same semantics:
// priority (lower first) then run_at order, named queues that run one job at
// a time across all workers, job keys, flags, exponential backoff
// (exp(min(attempts, 10)) seconds) and max attempts.
//
// # Drivers
//
// Core talks to PostgreSQL only through three small interfaces: Database,
// Transaction and Notifications. Adapters live in driver/ (pgxdriver is the
// default); package conformance proves a driver, including your own.
//
// # Adding jobs
//
// Utils is the client. A typed payload names its task through TaskPayload:
//
//	type SendEmail struct{ To string `json:"to"` }
//	func (SendEmail) TaskIdentifier() string { return "send_email" }
//
//	job, err := utils.AddJob(ctx, SendEmail{To: "a@example.com"}, &core.JobSpec{QueueName: "mail"})
//
// AddRawJob adds by identifier, AddJobs adds many in one statement,
// BulkAddJobs loads many keyless jobs with COPY (pgxdriver) and returns only
// their number, and Utils.WithTx runs any call on a transaction the caller holds, so a job is
// added atomically with the caller's own writes.
//
// # Running jobs
//
// A Worker runs the tasks it is given (NewTask for typed payloads, RawTask
// for raw JSON), fetching many jobs per statement, recording outcomes in
// batches, waking on NOTIFY and polling only as a fallback. Run runs until
// its context is cancelled, then shuts down gracefully: running jobs get
// WorkerOptions.GracePeriod to finish, after which their contexts are
// cancelled and unfinished jobs go back to the queue without counting the
// attempt. RunOnce runs until no job is runnable.
//
// For throughput, WorkerOptions.LocalQueue lets one fetch lock a batch of
// jobs for the whole worker (graphile-worker's localQueue), and
// CompleteJobBatchDelay / FailJobBatchDelay gather more outcomes per
// statement. A fetch runs beside the worker's loop (with a local queue it
// starts when half the batch is left) and commits without waiting for the
// WAL flush unless WorkerOptions.DurableFetch is set. Outcomes are always
// recorded in batches, and AddJobs inserts keyless jobs with one plain
// INSERT.
//
// A handler's error is retried with backoff until the job's max attempts; a
// handler that knows better returns FailPermanently(err) (no more attempts,
// err kept as last_error) or RetryAfter(d, err) (run again after d, the
// attempt not counted). A payload that does not decode into a NewTask's type
// fails for good at once.
//
// NewBatchTask defines a task whose payload is an array of items; when some
// items fail, only those are retried, and each item's result may fail it for
// good or snooze it. Utils.CancelJob cancels a job for good, including one a
// worker runs right now.
//
// Inside a handler, LoggerFromContext, UtilsFromContext and JobFromContext
// give the job's logger, a client for adding jobs and the job itself.
//
// # Dead-worker recovery
//
// graphile-worker frees the jobs of a crashed worker only after 4 hours.
// gworker workers also register in the schema's _private_gworker_workers
// table (a gworker object, see Migrate) and refresh a heartbeat there every
// RecoveryOptions.HeartbeatInterval (30s). Every SweepInterval (1m) one
// live worker of the schema, chosen by an advisory lock, takes the workers
// whose heartbeat is older than StaleThreshold (5m) for dead and, in one
// transaction, hands their jobs back to the queue (the attempt does not
// count; not before Delay, 30s; last_error says which worker died), unlocks
// their named queues and removes their rows. Jobs flagged ResilientFlag
// wait ResilientMultiplier (3) times longer. Locks held by ids that never
// registered, graphile-worker's, are left to its 4-hour rule unless
// SweepForeignLocks is set. It is on by default (WorkerOptions.Recovery);
// Utils.ListActiveWorkers and Utils.SweepStaleWorkers (with a dry run) do the
// same by hand. Utils.ListLockHolders counts the jobs and queues every
// locked_by holds, registered or not (graphile-worker's workers too).
//
// # Cron
//
// WorkerOptions.Crontab (graphile-worker's crontab text, see package
// cronspec) and WorkerOptions.Schedules (entries built in Go) make Run add a
// job for each entry at each minute it matches; RunOnce does not run cron,
// as graphile-worker's --once does not. Any number of workers, gworker and
// graphile-worker alike, may run the same entries: each minute of an entry
// is scheduled once, by whichever worker first moves the entry's
// last_execution in _private_known_crontabs forward to it, in the statement
// that adds the job. The job's payload is the entry's plus
// _cron: {ts, backfilled}, ts being the minute as JavaScript's toISOString
// writes it (2024-01-02T03:04:00.000Z) and also the job's run_at.
//
// At start the runner registers entries it has never seen (they are not
// back-filled), then back-fills, minute by minute, the minutes a known entry
// missed since its last execution, as far back as its fill option allows.
// It then schedules each minute from the next whole one on. When it wakes
// late (the process stalled, the clock was set forward) it schedules every
// minute it missed; when it wakes early (the clock was set back) it waits
// again, and a minute that already ran never runs again. After a failure it
// restarts with a growing delay and back-fills again: minutes missed
// meanwhile run only for entries with a fill period. WorkerOptions.Clock
// and Hooks.OnEvent (CronEvent) let tests drive and observe it.
//
// # Hooks, plugins and extensions
//
// Hooks (WorkerOptions.Hooks, UtilsOptions.Hooks) observe and steer every
// step. OnEvent receives typed events (WorkerStarted, FetchStarted,
// FetchFailed, JobsFetched, JobStarted, JobCompleted, JobFailed,
// JobPermanentlyFailed, JobInterrupted, JobCancelled, JobSkipped, JobAdded,
// LocalQueueEvent, WorkerShutdown, WorkerStopped, and CronEvent). Interceptors steer:
// BeforeJobRun continues, skips (the job goes back to the queue untouched,
// never deleted) or fails a job; AroundJobRun wraps its handler;
// AfterJobRun overrides its outcome; BeforeSchedule rewrites, skips or
// refuses every job being added, by the client, by a handler or by cron;
// AroundAdd wraps client adds; BeforeRecover decides, job by job, what a
// sweep of dead workers does (the sweep's action, reschedule, fail with
// backoff, or leave locked). A hook that panics is logged and never
// costs a job. A Plugin is a named set of hooks (WorkerOptions.Plugins);
// gworker's plugin directory has slog logging and OpenTelemetry ones.
// Without hooks the cost is a nil check.
//
// WorkerOptions.Extensions hold typed application state (WithExtension),
// which handlers read with LookupExtension or ExtensionFromContext.
//
// # Errors
//
// Bad input is a *ValidationError naming the field (errors.Is
// ErrInvalidInput). Migration refusals are *DatabaseNewerError,
// *DatabaseTooOldError and *UnsupportedServerError; a worker stopped by
// another process's breaking migration returns *BreakingMigrationError.
package core
