// Command gworker manages and runs graphile-worker jobs stored in PostgreSQL.
//
// It works on the same schema as graphile-worker 0.18 (Node.js), so it can
// install that schema, add jobs that a Node or Go worker runs, and run jobs
// that Node, Go or SQL (graphile_worker.add_job) added.
//
// Usage:
//
//	gworker [common flags] COMMAND [flags] [arguments]
//
// The commands are:
//
//	dev       start a local PostgreSQL for development and print its DATABASE_URL
//	migrate   install or upgrade the graphile-worker schema
//	add       add a job
//	run       run jobs with the executable tasks of a directory
//	jobs      list jobs, newest first, with filters
//	job       show one job: the whole row, its payload and its next attempt
//	retry, reschedule, complete, fail, remove, cancel
//	          act on jobs by id or by filter
//	stats     count jobs by state, task and queue
//	queues    list named queues: jobs waiting, and who holds each
//	tasks     list tasks: jobs waiting, and the live workers that run them
//	cleanup   delete permanently failed jobs, unused task names and queues
//	force-unlock
//	          release the jobs and queues locked by dead workers
//	workers   list the running gworker workers and their heartbeats
//	sweep     recover the jobs of dead gworker workers now
//	cron      check a crontab and show when its entries fire; list the known entries
//	bench     time draining the queue (gworker bench drain)
//	version   print gworker's version, commit and Go version (also --version)
//	help      show the usage, or a command's (gworker help COMMAND)
//
// Common flags, accepted before or after the command:
//
//	-c, --connection URL   PostgreSQL connection string (default: $DATABASE_URL;
//	                       with neither, libpq's PG* variables if PGHOST,
//	                       PGDATABASE or PGSERVICE is set)
//	-s, --schema NAME      graphile-worker schema (default: $GRAPHILE_WORKER_SCHEMA,
//	                       else graphile_worker)
//	-v, --verbose          log at debug level
//	-h, --help             show help
//
// Flags may also follow a command's arguments (gworker add ID '{}' --queue q);
// everything after "--" is an argument. Durations need a unit (500ms, 2s,
// 1m30s): a bare number is refused, naming the flag. A mistyped command or
// flag is answered on one line with the nearest one ("did you mean
// migrate?").
//
// A command that needs a database and has none (no -c, no $DATABASE_URL,
// no PG* variable) says so and suggests gworker dev. A failed connection is
// reported as what failed (no server answers, no such database,
// authentication, ...) on one line, then the details on a second. A
// command on a schema that is not installed says to run gworker migrate.
//
// # dev
//
//	gworker dev [--port N] [--detach | --stop]
//
// starts a PostgreSQL server for development from the PostgreSQL programs
// installed on the machine (found as internal/pgtest finds them; without
// them it says what to install), installs the schema and prints, alone on
// standard output,
//
//	export DATABASE_URL='postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable'
//
// so that eval "$(gworker dev --detach)" sets it. The data is kept in the
// user's cache directory (os.UserCacheDir()/gworker/dev, or
// /var/tmp/gworker/dev for root, whose home the server's postgres user
// cannot enter; $GWORKER_DEV_DIR overrides both). It listens on 127.0.0.1
// only, on port 55432 (a free one when that is taken), with trust
// authentication. Without --detach it runs until SIGINT or SIGTERM and then
// stops the server; --detach leaves it running; --stop stops a server left
// running (detached, or whose gworker dev was killed). When the server
// already runs, gworker dev prints the same line and exits, leaving it to
// whoever started it.
//
// # migrate
//
//	gworker migrate
//
// brings the schema to graphile-worker migration 20, creating it if needed,
// like graphile-worker --schema-only, and prints what it did, one of
//
//	schema "graphile_worker" installed (graphile-worker migration 20)
//	schema "graphile_worker" upgraded from graphile-worker migration 18 to 20
//	schema "graphile_worker" is already up to date (graphile-worker migration 20)
//
// # add
//
//	gworker add [--queue NAME] [--run-at TIME] [--max-attempts N] [--key KEY]
//	            [--key-mode replace|preserve_run_at|unsafe_dedupe] [--priority N]
//	            [--flag FLAG]... IDENTIFIER [JSON]
//
// adds a job for the task IDENTIFIER with the payload JSON (default {}). TIME
// is RFC 3339 (2030-01-02T15:04:05Z). It prints the job as one line of JSON:
// the columns of the jobs view (id, queue_name, task_identifier, payload,
// priority, run_at, attempts, max_attempts, last_error, created_at,
// updated_at, key, locked_at, locked_by, revision, flags) and state, null
// where the column is NULL, times RFC 3339 in UTC, flags an array ([] when
// none). This is core.Job's JSON encoding: jobs --json, job --json, cancel
// and remove --key, and the admin API print jobs the same way. The schema
// must exist.
//
// # run
//
//	gworker run [--once] [-q] [-j N] [--poll-interval DURATION]
//	            [--grace-period DURATION] [--tasks DIR] [--crontab FILE]
//	            [--heartbeat-interval DURATION] [--sweep-interval DURATION]
//	            [--sweep-threshold DURATION] [--recovery-delay DURATION]
//	            [--recovery-action ACTION] [--sweep-foreign-locks] [--no-recovery]
//	            [--listen-connection URL]
//
// migrates the schema, then runs jobs until SIGINT or SIGTERM, or with --once
// until no job is runnable. -j sets how many jobs run at once (default: 16,
// core.DefaultConcurrency). --local-queue sets how jobs are fetched: auto
// (the default) fetches batches that grow with the backlog, off fetches for
// free slots only, and a number fixes the batch. --poll-interval (default 2s) is how often an idle worker
// looks for jobs when no notification wakes it. --grace-period (default 5s) is how long
// running jobs may finish after a shutdown signal.
//
// When the database does not answer at start (no server listening yet,
// SQLSTATE 57P03 while it starts or recovers, 53300 too many connections),
// run waits for it with backoff and says so once; a bad connection string,
// a failed authentication or a missing database end it at once.
//
// --listen-connection URL (default: $DATABASE_LISTEN_URL) is a direct
// connection to PostgreSQL used only for LISTEN, for when -c goes through
// PgBouncer in transaction pooling mode, which cannot keep a LISTEN; the
// worker's other statements work through PgBouncer as they are. Without
// it, a worker that finds its LISTEN would not hold says so and polls.
//
// The tasks are the executable files under DIR (default ./tasks), searched
// recursively: a file's identifier is its path relative to DIR without its
// extension, with / separators, so tasks/a/b/c.sh runs jobs of the task
// a/b/c. Other files are ignored; two files with one identifier are an error.
// Only jobs of those tasks are fetched.
//
// A job runs its file in a process group of its own, with the worker's
// environment plus graphile-worker's variables
//
//	GRAPHILE_WORKER_PAYLOAD_FORMAT    json
//	GRAPHILE_WORKER_TASK_IDENTIFIER   the task identifier
//	GRAPHILE_WORKER_JOB_ID            the job id
//	GRAPHILE_WORKER_JOB_KEY           the job key, or empty
//	GRAPHILE_WORKER_JOB_ATTEMPTS      this attempt's number, from 1
//	GRAPHILE_WORKER_JOB_MAX_ATTEMPTS  the job's max attempts
//	GRAPHILE_WORKER_JOB_PRIORITY      the job's priority
//	GRAPHILE_WORKER_JOB_RUN_AT        run_at, RFC 3339 in UTC
//
// and {"payload": PAYLOAD} on standard input. Its standard output and error
// are logged line by line. Exit status 0 completes the job (it is deleted).
// Any other status fails it: last_error becomes "task exited with status N:"
// followed by the last 2 KB of standard error, and the job is retried after
// graphile-worker's backoff until it runs out of attempts.
//
// When the grace period after a shutdown signal is over, the process group
// of each task still running gets SIGTERM, and SIGKILL 5 seconds later. Such
// jobs go back to the queue without counting the attempt, and gworker waits
// for their processes before exiting.
//
// On Linux a task's process group also dies when the worker dies, even by
// SIGKILL: each task runs under a small supervisor (gworker itself, shown as
// gworker-task-supervisor) that leads the group and kills it with SIGKILL
// when its worker is gone, so that no task keeps running beside the copy of
// its job that recovery starts elsewhere. Processes a task left running
// after it exited are not covered; nor, elsewhere than on Linux, is
// anything.
//
// Without --once, run also runs cron: it schedules the entries of the
// crontab FILE given with --crontab (which must exist), or of ./crontab when
// it exists, as graphile-worker does. Each minute an entry matches adds one
// job, once across all the workers serving the schema, gworker and
// graphile-worker alike, with the payload's _cron key set; at start, entries
// with a fill option get the runs they missed (see package cronspec for the
// format). With --once cron does not run, and --crontab is refused.
//
// Dead-worker recovery is on unless --no-recovery is given: the worker
// registers in the schema's gworker registry and records a heartbeat every
// --heartbeat-interval (default 30s); every --sweep-interval (default 1m)
// one worker of the schema hands the jobs of workers whose heartbeat is
// older than --sweep-threshold (default 5m) back to the queue, not before
// --recovery-delay (default 30s; 0 means at once). --recovery-action
// fail_with_backoff counts the attempt as failed instead; skip leaves the
// jobs locked. Locks of workers that never registered (graphile-worker's)
// wait for graphile-worker's 4-hour rule, unless --sweep-foreign-locks frees
// those older than the threshold too. With --once the worker sweeps once, at
// start.
//
// Each completed job is logged at info level with its task, attempt and
// duration, as graphile-worker does; -q/--quiet drops those lines. With
// --once, run prints a summary on standard output,
//
//	run --once: 12 jobs completed, 1 failed; 3 runnable jobs left for tasks this worker does not have (send_emial: 3)
//
// and exits with status 1 when a job failed. At start, and every 5 minutes
// while it holds, run warns when runnable jobs wait for tasks that neither
// it nor any live gworker worker has.
//
// # Jobs
//
//	gworker jobs [--state STATE]... [--task T]... [--queue Q]... [--key K]
//	             [--worker ID] [--flag F]... [--payload JSON] [--error TEXT]
//	             [--limit N] [--after C | --before C] [--oldest-first]
//	             [--json | --watch [--interval D]]
//
// lists the jobs matching the filters, newest first, as a table cut to 80
// columns (ID, STATE, TASK, QUEUE, ATTEMPTS, RUN AT, ERROR), or with --json
// as one JSON object per job and line (the object gworker add prints). The states are ready, scheduled, running, retrying and failed.
// The cursors of the next and previous pages are printed on standard error.
// --watch redraws the table every --interval until SIGINT.
//
//	gworker job [--json] ID
//
// shows one job: its state, every column, its next attempt, its payload
// pretty-printed and its last error in full.
//
//	gworker retry|reschedule|complete|fail|remove|cancel [ID...] [filters] [--all]
//	        [--yes] [--dry-run] [--json]
//
// act on the jobs given by id, or on all the jobs matching the filters of
// gworker jobs, in batches of 1000; reschedule takes --run-at, --in,
// --priority, --attempts and --max-attempts, fail and cancel --reason. With
// filters (other than --key alone) they first print how many jobs match and
// ask on the terminal; --yes skips the question, and without a terminal
// they refuse unless --yes is given. Jobs locked by a worker are skipped,
// except by cancel. cancel ID and cancel --key K print the job as JSON, as
// does remove --key K (graphile-worker's remove_job).
//
//	gworker stats [--json]
//	gworker queues [--json]
//	gworker tasks [--json]
//	gworker cron list [--json]
//
// count the jobs by state, task and queue (exactly below 100,000 jobs,
// estimated above, and saying which); list the named queues with their
// waiting jobs and lock; list the tasks with their waiting and runnable
// jobs and the live gworker workers that registered them ("nobody" when
// none does); list the known crontab entries with their last execution.
//
//	gworker cleanup [DELETE_PERMAFAILED_JOBS,GC_TASK_IDENTIFIERS,GC_JOB_QUEUES]
//	gworker force-unlock WORKER_ID...
//
// run graphile-worker's cleanup tasks (default GC_TASK_IDENTIFIERS and
// GC_JOB_QUEUES, keeping the identifiers of tasks that live workers
// registered), and release the jobs and queues of dead workers.
//
// # workers
//
//	gworker workers [--threshold DURATION] [--json]
//
// lists the registered gworker workers, oldest first:
//
//	WORKER                    HOST   PID    VERSION   STARTED (UTC)          LAST HEARTBEAT   STATE   JOBS
//	pool-4c0d8e2a9b1f3e5d7a   web1   4242   v0.3.0    2030-01-02T03:04:05Z   12.5s ago        alive   3
//
// STATE is stale when the last heartbeat is older than --threshold (default
// 5m, or twice the worker's own interval if longer); JOBS is how many jobs it
// holds. --json prints a JSON array instead.
//
// # sweep
//
//	gworker sweep [--dry-run] [--threshold DURATION] [--delay DURATION]
//	              [--action ACTION] [--foreign] [--json]
//
// recovers now, in one transaction, the jobs and named queues of the workers
// whose heartbeat is older than --threshold (default 5m), as running workers
// do every sweep interval, and prints the dead workers, the jobs freed and
// the queues unlocked. --dry-run changes nothing and prints what a sweep
// would do. --json prints one JSON object instead, core.SweepResult's
// encoding, as the admin API's sweep answers: {"dry_run", "worker_ids",
// "removed_worker_ids", "foreign_worker_ids", "job_ids", "jobs",
// "skipped_job_ids", "queues"}.
//
// # cron check
//
//	gworker cron check FILE [--from TIME] [--count N] [--json]
//
// reads the crontab FILE and prints, for each entry, its identifier, its task
// and the next N (default 5) times it fires strictly after TIME (RFC 3339,
// default now), in RFC 3339 UTC:
//
//	IDENTIFIER    TASK          NEXT (UTC)
//	send_report   send_report   2030-01-02T04:30:00Z
//	                            2030-01-03T04:30:00Z
//
// With --json it prints one JSON array of
// {"identifier": ..., "task": ..., "next": [...]} objects instead. An entry
// that never fires (February 30) has no times. When FILE has errors, each is
// printed on standard error as "FILE: line L, column C: what was expected",
// and the exit status is 1. It needs no database.
//
// # Exit status
//
// 0 on success, 1 on an error (and for run --once, when a job failed), 2 on
// bad usage (printed on one line), and 57, as graphile-worker, when the
// database has a breaking migration this gworker does not know.
package main
