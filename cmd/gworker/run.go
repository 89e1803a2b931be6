package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

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

Each completed job is logged at info level with its duration, as
graphile-worker does (--quiet drops those lines); failures are logged as
warnings, and as errors when the job has no attempts left.

With --once, run prints a summary on standard output when it is done: how
many jobs completed, how many failed, and how many runnable jobs are left
for tasks that it does not have, by task. Its exit status is 1 when a job
failed (it will be retried, or failed for good), else 0.

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
			fs.flag(&boolValue{p: &o.once}, "", "run until no job is runnable, print a summary and exit (1 when a job failed)", "once")
			fs.flag(&boolValue{p: &o.quiet}, "", "do not log each completed job", "q", "quiet")
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
	quiet        bool
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
	tally := &jobTally{log: log, logCompleted: !o.quiet && !opts.verbose}
	wo.Hooks.OnEvent = tally.onEvent
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
	if err != nil || !o.once {
		return err
	}
	return tally.summary(ctx, e, db, schema, taskIdentifiers(tasks))
}

// jobTally logs completed jobs and counts outcomes for run --once's
// summary. Core logs completions at debug level only, since a library's
// log should stay quiet; the command says what it did, as graphile-worker
// does.
type jobTally struct {
	log          *slog.Logger
	logCompleted bool
	completed    atomic.Int64
	failed       atomic.Int64
	cancelled    atomic.Int64
}

// onEvent runs on the jobs' goroutines, so it only counts and logs.
func (t *jobTally) onEvent(_ context.Context, ev core.Event) {
	switch ev := ev.(type) {
	case core.JobCompleted:
		t.completed.Add(1)
		if t.logCompleted {
			t.log.Info("gworker: job completed", slog.Int64("job_id", ev.Job.ID), slog.String("task", ev.Job.TaskIdentifier),
				slog.Int("attempts", ev.Job.Attempts), slog.Duration("duration", ev.Duration.Round(10*time.Microsecond)))
		}
	case core.JobFailed:
		t.failed.Add(1)
	case core.JobCancelled:
		t.cancelled.Add(1)
	}
}

// summary prints what run --once did and fails when a job failed.
func (t *jobTally) summary(ctx context.Context, e *env, db core.Database, schema string, tasks []string) error {
	left, err := runnableElsewhere(ctx, db, schema, tasks)
	if err != nil {
		return err
	}
	completed, failed, cancelled := t.completed.Load(), t.failed.Load(), t.cancelled.Load()
	line := fmt.Sprintf("run --once: %s completed, %d failed", plural(completed, "job"), failed)
	if cancelled > 0 {
		line += fmt.Sprintf(", %d cancelled", cancelled)
	}
	var total int64
	var byTask []string
	for _, l := range left {
		total += l.n
		byTask = append(byTask, fmt.Sprintf("%s: %d", l.task, l.n))
	}
	if total > 0 {
		line += fmt.Sprintf("; %s left for tasks this worker does not have (%s)", plural(total, "runnable job"), strings.Join(byTask, ", "))
	} else {
		line += "; no runnable job left for other tasks"
	}
	fmt.Fprintln(e.stdout, line)
	if failed > 0 {
		return fmt.Errorf("%s failed (see the log above)", plural(failed, "job"))
	}
	return nil
}

// taskCount is a number of jobs of one task.
type taskCount struct {
	task string
	n    int64
}

// runnableElsewhere counts, by task, the jobs runnable now whose task is
// not among tasks: what a run --once left for other workers.
func runnableElsewhere(ctx context.Context, db core.Database, schema string, tasks []string) ([]taskCount, error) {
	rows, err := db.Query(ctx, `select task_identifier, count(*) from `+pgx.Identifier{schema}.Sanitize()+`.jobs
where locked_at is null and run_at <= now() and attempts < max_attempts and task_identifier <> all($1::text[])
group by task_identifier order by count(*) desc, task_identifier`, tasks)
	if err != nil {
		return nil, fmt.Errorf("count the jobs left: %w", err)
	}
	defer rows.Close()
	var out []taskCount
	for rows.Next() {
		var c taskCount
		if err := rows.Scan(&c.task, &c.n); err != nil {
			return nil, fmt.Errorf("count the jobs left: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func taskIdentifiers(tasks []execTask) []string {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.identifier
	}
	return ids
}

// plural writes "1 job", "2 jobs".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
