package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/gworker/gworker/core"
)

// defaultTasksDir is where run looks for executable tasks, as graphile-worker
// does.
const defaultTasksDir = "./tasks"

func runCommand() *command {
	return &command{
		name:     "run",
		synopsis: "[flags]",
		summary:  "run jobs with the executable tasks of a directory",
		help: `
Runs jobs until interrupted (SIGINT or SIGTERM), or with --once until no job
is runnable. Migrates the schema first.

Every executable file under the tasks directory (searched recursively) is a
task; its identifier is its path relative to the directory without the
extension: tasks/send_email.sh is send_email, tasks/a/b/c.py is a/b/c. Only
jobs of those tasks are fetched. A job runs its file with the environment
variables

  GRAPHILE_WORKER_PAYLOAD_FORMAT=json   GRAPHILE_WORKER_TASK_IDENTIFIER
  GRAPHILE_WORKER_JOB_ID                GRAPHILE_WORKER_JOB_KEY
  GRAPHILE_WORKER_JOB_ATTEMPTS          GRAPHILE_WORKER_JOB_MAX_ATTEMPTS
  GRAPHILE_WORKER_JOB_PRIORITY          GRAPHILE_WORKER_JOB_RUN_AT (RFC 3339)

and {"payload": PAYLOAD} on its standard input. Exit status 0 completes the
job; any other fails it (it is retried with backoff), with the end of the
task's standard error as the job's last_error. Its output is logged.

On shutdown, running tasks get the grace period to finish; then their process
group gets SIGTERM, and SIGKILL 5s later. Jobs interrupted that way go back to
the queue without counting the attempt. On Linux a task's process group is
also killed when the worker dies, even by SIGKILL.

Without --once, run also schedules the entries of the crontab FILE given with
--crontab, or of ./crontab when it exists (graphile-worker's format; see
"gworker cron check"): each matching minute adds one job, once across all
workers, Node ones included. With --once cron does not run.

While it runs, the worker registers in the schema's gworker registry and
records a heartbeat every --heartbeat-interval; every --sweep-interval one
worker of the schema looks for workers whose heartbeat is older than
--sweep-threshold (they crashed or lost the database) and hands their jobs
back to the queue, not before --recovery-delay (see "gworker help sweep").
--no-recovery turns that off; crashed workers' jobs then wait for
graphile-worker's 4-hour rule.`,
		setup: func(fs *flagSet) action {
			o := runOptions{pollInterval: core.DefaultPollInterval, gracePeriod: core.DefaultGracePeriod, tasksDir: defaultTasksDir}
			fs.flag(&boolValue{p: &o.once}, "", "run until no job is runnable, then exit", "once")
			fs.flag(&intValue{p: &o.jobs, min: 1, max: 1 << 16}, "N", fmt.Sprintf("how many jobs run at once (default: the number of CPUs, %d)", runtime.NumCPU()), "j", "jobs")
			fs.flag(&durationValue{p: &o.pollInterval, min: time.Millisecond}, "DURATION", "how often to look for jobs when no notification arrives (default: 2s)", "poll-interval")
			fs.flag(&durationValue{p: &o.gracePeriod}, "DURATION", "on shutdown, how long running tasks may finish before SIGTERM; 0 means none (default: 5s)", "grace-period")
			fs.flag(&stringValue{p: &o.tasksDir}, "DIR", "directory of executable tasks (default: "+defaultTasksDir+")", "tasks")
			fs.flag(&stringValue{p: &o.crontab}, "FILE", "crontab to schedule jobs from (default: "+defaultCrontabFile+" when it exists)", "crontab")
			o.throughput.register(fs)
			o.recovery.register(fs)
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("run takes no arguments, got %q", args[0])
				}
				return runWorker(ctx, e, fs.opts, &o)
			}
		},
	}
}

type runOptions struct {
	once         bool
	jobs         int
	pollInterval time.Duration
	gracePeriod  time.Duration
	tasksDir     string
	crontab      string
	throughput   throughputFlags
	recovery     recoveryFlags
}

func runWorker(ctx context.Context, e *env, opts *commonFlags, o *runOptions) error {
	log := opts.logger(e, slog.LevelInfo)
	crontab, err := loadCrontab(o.crontab, defaultCrontabFile, o.once, log)
	if err != nil {
		return err
	}
	tasks, err := loadExecTasks(o.tasksDir, log)
	if err != nil {
		return err
	}
	schema := opts.schemaName(e)
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()

	runner := &execRunner{environ: e.environ, killDelay: defaultKillDelay}
	coreTasks := make([]core.Task, len(tasks))
	for i, t := range tasks {
		coreTasks[i] = core.RawTask(t.identifier, runner.handler(t))
	}
	grace := o.gracePeriod
	if grace == 0 {
		grace = -1 // core: negative cancels at once, 0 would mean the default
	}
	recovery, err := o.recovery.options()
	if err != nil {
		return err
	}
	wo := core.WorkerOptions{
		Database:      db,
		Schema:        schema,
		Tasks:         coreTasks,
		Concurrency:   o.jobs,
		PollInterval:  o.pollInterval,
		HandleSignals: true,
		GracePeriod:   grace,
		Logger:        log,
		Crontab:       crontab,
		Recovery:      recovery,
	}
	o.throughput.apply(&wo)
	w, err := core.NewWorker(wo)
	if err != nil {
		return err
	}
	if o.once {
		err = w.RunOnce(ctx)
	} else {
		err = w.Run(ctx)
	}
	// The worker may have given up on a task that ignored SIGTERM; do not
	// leave its processes behind.
	runner.wait()
	return err
}
