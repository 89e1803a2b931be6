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
// AddRawJob adds by identifier, AddJobs adds many in one statement, and
// Utils.WithTx runs any call on a transaction the caller holds, so a job is
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
// Inside a handler, LoggerFromContext, UtilsFromContext and JobFromContext
// give the job's logger, a client for adding jobs and the job itself.
//
// # Errors
//
// Bad input is a *ValidationError naming the field (errors.Is
// ErrInvalidInput). Migration refusals are *DatabaseNewerError,
// *DatabaseTooOldError and *UnsupportedServerError; a worker stopped by
// another process's breaking migration returns *BreakingMigrationError.
package core
