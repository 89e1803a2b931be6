package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
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
warnings, and as errors when the job has no attempts left. At start, and
every 5 minutes while it holds, a warning names the tasks whose jobs are
runnable but that neither this worker nor any live gworker worker has (a
misspelt task name, or a worker that is not running).

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
graphile-worker's 4-hour rule.

When the database is not available while run starts, at its first
connection or later while it migrates and registers (no server listening
yet, SQLSTATE 57P03 "cannot connect now" while it starts or recovers, 53300
too many connections, a session ended by the server's shutdown, PgBouncer
failing to reach it), run waits for it with backoff, saying so once; a bad
connection string, a failed authentication, a missing database or a
migration that fails for another reason (a schema newer than this gworker)
end it at once.

Behind PgBouncer in transaction pooling mode (-c pointing at PgBouncer), give
the worker a direct connection to PostgreSQL for LISTEN with
--listen-connection URL (or $DATABASE_LISTEN_URL): PgBouncer cannot keep a
LISTEN, and without it new jobs wait for the next poll. The worker says so
at start when it finds its LISTEN would not hold. Its other statements work
through PgBouncer as they are.`,
		setup: func(fs *flagSet) action {
			o := runOptions{pollInterval: core.DefaultPollInterval, gracePeriod: core.DefaultGracePeriod, tasksDir: defaultTasksDir}
			fs.flag(&boolValue{p: &o.once}, "", "run until no job is runnable, print a summary and exit (1 when a job failed)", "once")
			fs.flag(&boolValue{p: &o.quiet}, "", "do not log each completed job", "q", "quiet")
			fs.flag(&intValue{p: &o.jobs, min: 1, max: 1 << 16}, "N", fmt.Sprintf("how many jobs run at once (default: %d)", core.DefaultConcurrency), "j", "jobs")
			fs.flag(&durationValue{p: &o.pollInterval, min: time.Millisecond}, "DURATION", fmt.Sprintf("how often to look for jobs when no notification arrives (default: %v)", core.DefaultPollInterval), "poll-interval")
			fs.flag(&durationValue{p: &o.gracePeriod}, "DURATION", fmt.Sprintf("on shutdown, how long running tasks may finish before SIGTERM; 0 means none (default: %v)", core.DefaultGracePeriod), "grace-period")
			fs.flag(&stringValue{p: &o.tasksDir}, "DIR", "directory of executable tasks (default: "+defaultTasksDir+")", "tasks")
			fs.flag(&stringValue{p: &o.crontab}, "FILE", "crontab to schedule jobs from (default: "+defaultCrontabFile+" when it exists)", "crontab")
			fs.flag(&stringValue{p: &o.listenURL}, "URL", "direct PostgreSQL connection for LISTEN only, when -c goes through PgBouncer "+
				"in transaction pooling mode (default: $"+envListenURL+", else the -c connection)", "listen-connection")
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
	listenURL    string
	throughput   throughputFlags
	recovery     recoveryFlags
}

func runWorker(ctx context.Context, e *env, opts *commonFlags, o *runOptions) error {
	log := opts.logger(e, slog.LevelInfo)
	var dbOpts []pgxdriver.Option
	if u := cmp.Or(o.listenURL, e.getenv(envListenURL)); u != "" {
		if _, err := pgx.ParseConfig(u); err != nil {
			return usagef("--listen-connection (or $%s): %v", envListenURL, err)
		}
		dbOpts = append(dbOpts, pgxdriver.ListenDSN(u))
	}
	crontab, err := loadCrontab(o.crontab, defaultCrontabFile, o.once, log)
	if err != nil {
		return err
	}
	tasks, err := loadExecTasks(o.tasksDir, log)
	if err != nil {
		return err
	}
	schema := opts.schemaName(e)
	// The whole start (connecting, then the worker's migration and its
	// registrations) waits out a database that is not up yet or restarts
	// meanwhile; see startWait.
	wait := &startWait{log: log}
	var db *pgxdriver.Driver
	for {
		// The worker handles SIGINT and SIGTERM once it runs; here they
		// make the attempt, and so the command, give up.
		sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		db, err = opts.open(sigCtx, e, dbOpts...)
		interrupted := sigCtx.Err() != nil
		stop()
		if err == nil {
			break
		}
		if interrupted || !wait.retry(ctx, err) {
			return err
		}
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
	ours := taskIdentifiers(tasks)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching sync.WaitGroup
	defer func() {
		stopWatch()
		watching.Wait()
	}()
	tally.started = func(u *core.Utils) {
		wait.workerStarted()
		watching.Go(func() { warnUnwantedJobs(watchCtx, u, ours, log, unwantedJobsInterval) })
	}
	wo.Hooks.OnEvent = tally.onEvent
	w, err := core.NewWorker(wo)
	if err != nil {
		return err
	}
	for {
		// Until the worker has started, an error is its start's: a
		// migration or registration that lost the database is tried
		// again, from the start. Nothing of a failed start stays behind.
		if o.once {
			err = w.RunOnce(ctx)
		} else {
			err = w.Run(ctx)
		}
		if err == nil || !wait.retry(ctx, err) {
			break
		}
	}
	// The worker may have given up on a task that ignored SIGTERM; do not
	// leave its processes behind.
	runner.wait()
	if err != nil || !o.once {
		return err
	}
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema, Logger: log})
	if err != nil {
		return err
	}
	return tally.summary(ctx, e, u, ours)
}

// unwantedJobsInterval is how often run repeats its warning about jobs
// that no live worker runs, while they wait.
const unwantedJobsInterval = 5 * time.Minute

// warnUnwantedJobs warns, now and every interval while it holds, when
// runnable jobs wait for tasks that neither this worker nor any live
// gworker worker has: a task name misspelt when adding ("send_emial") or a
// worker missing, whose jobs would otherwise wait without a word.
func warnUnwantedJobs(ctx context.Context, u *core.Utils, ours []string, log *slog.Logger, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if tasks, err := u.ListTasks(ctx); err != nil {
			if ctx.Err() == nil {
				log.Debug("gworker: could not list the tasks of waiting jobs", slog.Any("error", err))
			}
		} else if waiting := unwanted(tasks, ours, true); len(waiting) > 0 {
			log.Warn("gworker: runnable jobs wait for tasks that no live gworker worker has (a misspelt task name? a worker not running? "+
				"a graphile-worker on Node may still run them)", slog.String("tasks", countsText(waiting)))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// unwanted returns the tasks with jobs runnable now that are not among
// ours, busiest first; unclaimed keeps only those no live worker
// registered.
func unwanted(tasks []core.TaskInfo, ours []string, unclaimed bool) []core.TaskInfo {
	var out []core.TaskInfo
	for _, t := range tasks {
		if t.Ready > 0 && !slices.Contains(ours, t.Identifier) && (!unclaimed || len(t.Workers) == 0) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b core.TaskInfo) int { return cmp.Compare(b.Ready, a.Ready) })
	return out
}

// countsText writes "send_emial: 3, other: 1".
func countsText(tasks []core.TaskInfo) string {
	parts := make([]string, len(tasks))
	for i, t := range tasks {
		parts[i] = fmt.Sprintf("%s: %d", t.Identifier, t.Ready)
	}
	return strings.Join(parts, ", ")
}

// jobTally logs completed jobs and counts outcomes for run --once's
// summary. Core logs completions at debug level only, since a library's
// log should stay quiet; the command says what it did, as graphile-worker
// does.
type jobTally struct {
	log          *slog.Logger
	logCompleted bool
	started      func(*core.Utils) // on WorkerStarted, with the worker's client
	completed    atomic.Int64
	failed       atomic.Int64
	cancelled    atomic.Int64
}

// onEvent runs on the jobs' goroutines, so it only counts and logs.
func (t *jobTally) onEvent(_ context.Context, ev core.Event) {
	switch ev := ev.(type) {
	case core.WorkerStarted:
		if t.started != nil {
			t.started(ev.Utils)
		}
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
func (t *jobTally) summary(ctx context.Context, e *env, u *core.Utils, ours []string) error {
	tasks, err := u.ListTasks(ctx)
	if err != nil {
		return fmt.Errorf("count the jobs left: %w", err)
	}
	left := unwanted(tasks, ours, false)
	completed, failed, cancelled := t.completed.Load(), t.failed.Load(), t.cancelled.Load()
	line := fmt.Sprintf("run --once: %s completed, %d failed", plural(completed, "job"), failed)
	if cancelled > 0 {
		line += fmt.Sprintf(", %d cancelled", cancelled)
	}
	var total int64
	for _, l := range left {
		total += l.Ready
	}
	if total > 0 {
		line += fmt.Sprintf("; %s left for tasks this worker does not have (%s)", plural(total, "runnable job"), countsText(left))
	} else {
		line += "; no runnable job left for other tasks"
	}
	fmt.Fprintln(e.stdout, line)
	if failed > 0 {
		return fmt.Errorf("%s failed (see the log above)", plural(failed, "job"))
	}
	return nil
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
