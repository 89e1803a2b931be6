// Package logging is a gworker plugin that writes every hook event as a
// structured log record through log/slog.
//
//	worker, err := core.NewWorker(core.WorkerOptions{
//		Database: db,
//		Tasks:    tasks,
//		Plugins:  []core.Plugin{logging.New(logging.Options{Logger: logger})},
//	})
//
// Each record's message names what happened ("gworker: job completed") and
// its attributes carry the details, under stable keys:
//
//	event        the event's name: job:start, job:success, job:error, ...
//	worker       the worker's id (pool-...), where one is concerned
//	job_id       the job's id
//	task         the job's task identifier
//	queue        the job's named queue, when it has one
//	attempts     the attempt count (this attempt included, once started)
//	max_attempts the job's max attempts
//	duration     how long the handler ran
//	error        the failure, for failures
//	will_retry   whether a failed job will be retried
//
// Levels: failures that will be retried, interruptions, cancellations and
// late cron timers are Warn; permanent failures, cron errors and a worker
// stopping with an error are Error; worker start and stop, cron schedules
// and the routine job events (start, success, skip) are at Options.JobLevel
// (Info by default); fetches, adds, local-queue changes and cron ticks are
// Debug. The handler's Enabled is checked first, so disabled levels cost
// next to nothing.
//
// The worker's own logger (WorkerOptions.Logger) already logs failures;
// this plugin is for a complete, uniform event log, for example shipped to
// a log store separate from the application's.
package logging
