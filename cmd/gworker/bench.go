package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gworker/gworker/core"
)

// benchTask is the identifier whose jobs "gworker bench drain" runs.
const benchTask = "noop"

func benchCommand() *command {
	return &command{
		name:     "bench",
		synopsis: "drain [flags]",
		summary:  "measure how fast this worker drains no-op jobs (bench drain)",
		help: `
bench drain runs a built-in handler that does nothing for every job of the
task "noop" already in the database, until none is runnable (like run --once),
then prints one line:

  jobs=N seconds=S jobs_per_sec=R

N is how many jobs the handler ran, S the wall time of the run (from the
worker's start, after the schema check, to the moment every outcome was
recorded) and R is N/S. Fill the queue first, for example with SQL:

  select graphile_worker.add_jobs(array(
    select json_populate_record(null::graphile_worker.job_spec,
      json_build_object('identifier', 'noop', 'payload', json_build_object('i', i)))
    from generate_series(1, 100000) i));

The defaults are the recommended production settings (core's defaults), not
benchmark settings: pass -j, --local-queue and --batch-delay to try others.
bench/README.md in the repository compares gworker with its peers.`,
		setup: func(fs *flagSet) action {
			var o benchOptions
			fs.flag(&intValue{p: &o.jobs, min: 1, max: 1 << 16}, "N", fmt.Sprintf("how many jobs run at once (default: %d)", core.DefaultConcurrency), "j", "jobs")
			o.throughput.register(fs)
			return func(ctx context.Context, e *env, args []string) error {
				switch {
				case len(args) == 0:
					return usagef("bench needs a subcommand: drain")
				case args[0] != "drain":
					return usagef("unknown bench subcommand %q: want drain", args[0])
				case len(args) > 1:
					return usagef("bench drain takes no arguments, got %q", args[1])
				}
				return benchDrain(ctx, e, fs.opts, &o)
			}
		},
	}
}

type benchOptions struct {
	jobs       int
	throughput throughputFlags
}

// throughputFlags are the worker's throughput settings, shared by run and
// bench drain.
type throughputFlags struct {
	localQueue   core.LocalQueueOptions
	refetchDelay time.Duration
	batchDelay   time.Duration
	durableFetch bool
}

func (t *throughputFlags) register(fs *flagSet) {
	fs.flag(&localQueueValue{p: &t.localQueue}, "SIZE", "fetch batches of SIZE jobs for the whole worker; auto adapts the batch to demand, off fetches for free slots only (default: auto)", "local-queue")
	fs.flag(&durationValue{p: &t.refetchDelay}, "DURATION", "with --local-queue, wait about this long after a fetch that found nothing (default: 0)", "refetch-delay")
	fs.flag(&durationValue{p: &t.batchDelay}, "DURATION", "gather completions and failures this long before recording them (default: 0, record at once)", "batch-delay")
	fs.flag(&boolValue{p: &t.durableFetch}, "", "wait for each fetch's commit to reach disk (default: fetches commit with synchronous_commit off; "+
		"a database crash then runs the latest fetched jobs again, as a worker crash does)", "durable-fetch")
}

// apply sets the throughput fields of o.
func (t *throughputFlags) apply(o *core.WorkerOptions) {
	o.LocalQueue = t.localQueue
	o.LocalQueue.RefetchDelay = core.RefetchDelayOptions{Duration: t.refetchDelay}
	o.CompleteJobBatchDelay, o.FailJobBatchDelay = t.batchDelay, t.batchDelay
	o.DurableFetch = t.durableFetch
}

// benchDrain runs the no-op handler on every runnable "noop" job and prints
// the result line.
func benchDrain(ctx context.Context, e *env, opts *commonFlags, o *benchOptions) error {
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	schema := opts.schemaName(e)
	log := opts.logger(e, slog.LevelWarn)
	// Migrate (or check) first, as run does, so that the time measures
	// running jobs only.
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema, Logger: log}); err != nil {
		return err
	}
	var ran atomic.Int64
	wo := core.WorkerOptions{
		Database: db,
		Schema:   schema,
		Tasks: []core.Task{core.RawTask(benchTask, func(context.Context, *core.Job) error {
			ran.Add(1)
			return nil
		})},
		Concurrency:   o.jobs,
		SkipMigrate:   true,
		HandleSignals: true,
		Logger:        log,
	}
	o.throughput.apply(&wo)
	w, err := core.NewWorker(wo)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := w.RunOnce(ctx); err != nil {
		return err
	}
	seconds := time.Since(start).Seconds()
	n := ran.Load()
	fmt.Fprintf(e.stdout, "jobs=%d seconds=%.3f jobs_per_sec=%.0f\n", n, seconds, float64(n)/seconds)
	return nil
}
