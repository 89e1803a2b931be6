// Package admin is gworker's web page and JSON API for watching and
// operating the jobs of a schema: counts, jobs found by server-side
// filters, one job's every field, queues, workers (gworker's by their
// heartbeats, graphile-worker's by the locks they hold), cron, tasks no
// worker runs, jobs per second, actions on one job, on selected jobs or on
// everything a filter matches, maintenance, and an audit log of every
// change.
//
// NewHandler returns an http.Handler to mount in the application's own
// server, under any path:
//
//	h, err := admin.NewHandler(utils, admin.Options{
//		Prefix: "/admin",
//		Auth: admin.Basic(admin.BasicUser{Name: "ops", Password: os.Getenv("ADMIN_PASSWORD"), Role: admin.RoleOperator}),
//	})
//	if err != nil { ... }
//	mux.Handle("/admin/", h)
//
// The command "gworker admin" serves it on its own.
//
// Everything it serves is in the binary: server-rendered pages that read
// well with JavaScript off, one stylesheet and one small script that
// refreshes the page's live parts (pausable) and asks before destructive
// posts. Nothing is loaded from elsewhere.
//
// # Security
//
// Options.Auth is required: Basic (users compared in constant time),
// Bearer (tokens; browsers sign in with a form that keeps the token in an
// HttpOnly, SameSite=Strict cookie), AuthFunc (the application's own
// session or a trusted proxy's headers), or NoAuth, which must be chosen
// explicitly. Each identity is a RoleViewer, who reads, or a RoleOperator,
// who may also change things; Options.ReadOnly makes everyone a viewer.
//
// Every request that changes something must be a POST that passes
// net/http's CrossOriginProtection (Sec-Fetch-Site, or Origin against
// Host), so another site cannot make a signed-in browser post; a page
// behind a proxy that rewrites the host lists its public origin in
// Options.TrustedOrigins. Bodies are limited to MaxBodyBytes. Every
// response carries a Content-Security-Policy that allows only the page's
// own script and stylesheet (no inline code), frame-ancestors 'none',
// nosniff and no-referrer. Everything shown is escaped by html/template;
// JSON escapes <, > and &. NUL characters, which PostgreSQL cannot store,
// are refused with 400. Every change is recorded in the schema's audit log
// (_private_gworker_audit: who, what, which jobs, when, with what result),
// shown on the page.
//
// # JSON API
//
// Under Prefix + "/api/v1/", with the same authentication. Times are RFC
// 3339 in UTC. Errors are {"error": "..."} with 400 (bad input), 401,
// 403 (role, read-only or cross-origin), 404, 413 (body too large) or 500.
// Bodies of POSTs are JSON; unknown fields are refused.
//
//	GET /api/v1/me
//	  {"name": "ops", "role": "operator", "read_only": false, "can_write": true}
//
//	GET /api/v1/stats
//	  {"exact": true, "total": 12, "by_state": {"ready": 3, ...},
//	   "by_task": {"send_email": {"failed": 2}}, "by_queue": {"mail": {"ready": 1}}}
//	  Counts are estimated (exact false) on big tables; see core.JobStats.
//
//	GET /api/v1/jobs?state=failed,retrying&task=send_email&queue=Q&key=K&worker=W&flag=F
//	                &payload={"user_id":42}&error=TEXT&limit=50&after=CURSOR&before=CURSOR&order=oldest
//	  {"jobs": [JOB, ...], "next": "CURSOR", "prev": "CURSOR"}
//	  Every parameter is optional; task, queue, flag and state repeat (or
//	  state takes a comma-separated list). "next" is "" on the last page.
//	  JOB is {"id", "queue_name", "task_identifier", "payload", "priority",
//	  "run_at", "attempts", "max_attempts", "last_error", "created_at",
//	  "updated_at", "key", "locked_at", "locked_by", "revision", "flags",
//	  "state"}, null where the column is, flags an array ([] when none):
//	  core.Job's JSON encoding, the same object gworker jobs --json prints.
//
//	GET /api/v1/jobs/{id}
//	  JOB, or 404.
//
//	POST /api/v1/jobs
//	  {"task": "send_email", "payload": {...}, "queue": "mail", "run_at": "10m" or RFC 3339,
//	   "max_attempts": 3, "key": "k", "key_mode": "replace", "priority": 0, "flags": ["f"]}
//	  201 with JOB. Checked as "gworker add" checks its arguments.
//
//	POST /api/v1/jobs/{id}/{action}
//	  action is retry, run-now, reschedule, complete, fail, remove or cancel.
//	  Body (optional): {"reason": "..."} for fail and cancel; {"run_at": "10m",
//	  "priority": 1, "max_attempts": 5} for reschedule.
//	  {"action", "dry_run", "matched", "changed", "skipped", "ids"}; 404 when
//	  the job does not exist. A job a worker holds is skipped (changed 0),
//	  except by cancel. retry gives a job all its attempts back and runs it
//	  now; run-now runs it now, giving a permanently failed one its attempts
//	  back and leaving a waiting one's attempts alone, in one statement
//	  (core's RunNowMatching) for the whole selection (per 1000 jobs).
//
//	POST /api/v1/jobs/actions/{action}
//	  {"ids": [1, 2]} or {"filter": {"state": ["failed"], "task": ["send_email"], "queue": [...],
//	   "key": "", "worker": "", "flag": [...], "payload": {...}, "error": ""}},
//	  plus "dry_run": true to count what would change, and "confirm": true,
//	  which an action on a filter needs. The other fields as above. Answers
//	  like the per-job action. Runs in batches of 1000 jobs.
//
//	GET /api/v1/queues
//	  {"queues": [{"name", "waiting", "locked_by", "locked_at"}]}
//
//	GET /api/v1/tasks
//	  {"tasks": [{"identifier", "waiting", "ready", "workers", "unserved"}]}
//	  unserved: jobs wait and no live gworker worker runs the task.
//
//	GET /api/v1/workers
//	  {"workers": [{"id", "hostname", "pid", "version", "concurrency", "started_at",
//	    "last_heartbeat_at", "heartbeat_age_seconds", "heartbeat_interval_seconds",
//	    "stale", "locked_jobs"}],
//	   "other_lockers": [{"id", "locked_jobs", "locked_queues", "oldest_lock"}],
//	   "stale_threshold_seconds": 300}
//	  other_lockers hold jobs or queues without being registered (graphile-worker
//	  workers, gworker workers with recovery off), oldest lock first; the counts
//	  are exact (see core.Utils.ListLockHolders).
//
//	GET /api/v1/cron
//	  {"cron": [{"identifier", "task", "schedule", "known_since", "last_execution", "next_run"}]}
//	  task, schedule and next_run come from Options.Crontab.
//
//	GET /api/v1/throughput?window=1h
//	  {"now", "since", "bucket_seconds": 60,
//	   "points": [{"bucket", "worker", "task", "completed", "failed"}]}
//	  What gworker workers finished per minute; see core.Utils.Throughput.
//
//	GET /api/v1/audit?limit=50
//	  {"entries": [{"id", "at", "actor", "action", "detail", "job_ids", "matched", "changed", "error"}]}
//
//	POST /api/v1/maintenance/cleanup       {"tasks": ["DELETE_PERMAFAILED_JOBS", "GC_TASK_IDENTIFIERS", "GC_JOB_QUEUES"]}
//	POST /api/v1/maintenance/force-unlock  {"worker_ids": ["pool-..."]}
//	POST /api/v1/maintenance/sweep         {"dry_run": true}
//	  cleanup and force-unlock answer {"done": true}; sweep answers
//	  {"dry_run", "worker_ids", "removed_worker_ids", "foreign_worker_ids", "job_ids", "jobs",
//	   "skipped_job_ids", "queues"}: core.SweepResult's JSON encoding, the same
//	  object gworker sweep --json prints. (Before, the keys were dead_workers,
//	  removed_workers and foreign_lockers, and skipped_job_ids was missing.)
package admin
