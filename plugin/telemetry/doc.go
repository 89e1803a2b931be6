// Package telemetry is a gworker plugin that traces and measures jobs
// through the OpenTelemetry API. Give one Plugin to your workers and to
// your clients:
//
//	tel, err := telemetry.New(telemetry.Options{}) // the global providers
//	utils, err := core.NewUtils(db, core.UtilsOptions{Plugins: []core.Plugin{tel}})
//	worker, err := core.NewWorker(core.WorkerOptions{..., Plugins: []core.Plugin{tel}})
//
// # Traces
//
// Each client call that adds jobs (AddJob, AddRawJob, AddJobs,
// AddBatchJob) runs in a producer span "gworker add <task>", a child of the
// caller's span. The span's context is written into each job's payload under
// TraceKey ("_gworker_trace"), as the propagator's fields (W3C traceparent
// and tracestate by default).
//
// Each run of a job is a consumer span "gworker run <task>", with the job's
// id, task, attempt, queue and worker as attributes and the handler's error
// as its status. The handler's context carries it, so spans the handler
// starts are its children, and jobs the handler adds (UtilsFromContext) are
// added in child spans. The run span is not a child of the add span, which
// may have ended long before: it links to it (link attribute
// gworker.link=added_by), whichever process added the job, as long as both
// use the same propagator.
//
// The trace key is an extra member of the payload. encoding/json ignores
// unknown members, so typed payloads (core.NewTask) decode as before;
// handlers that read the raw payload, or decode with DisallowUnknownFields,
// see it, and Node workers see it as payload._gworker_trace. Only JSON
// object payloads can carry it: batch jobs (array payloads), scalar payloads,
// jobs added by SQL or by graphile-worker, and cron jobs (the cron runner
// has no span to link to) run in spans without a link.
//
// # Metrics
//
//	gworker.jobs.started    counter    handlers started, by gworker.task
//	gworker.jobs.completed  counter    handlers succeeded, by gworker.task
//	gworker.jobs.failed     counter    failed attempts, by gworker.task and
//	                                   gworker.job.will_retry
//	gworker.jobs.added      counter    jobs added by clients, by gworker.task
//	                                   and gworker.add.source
//	gworker.job.duration    histogram  handler run time in seconds, by
//	                                   gworker.task and gworker.job.outcome
//	                                   (success, failure, snoozed,
//	                                   interrupted, cancelled)
//	gworker.jobs.available  gauge      jobs that could run now, by
//	                                   gworker.schema, while a worker with the
//	                                   plugin runs on the schema
//	gworker.fetch.errors    counter    fetches that failed (the database was
//	                                   away or refused the statement); a
//	                                   rising count is the alert to set
//
// The gauge counts with one indexed query (core.Utils.CountAvailableJobs)
// when a collection finds the last count older than
// Options.QueueDepthInterval, so many collections or many workers do not
// multiply queries beyond one per schema per interval.
package telemetry
