// Command drainer is the worker process of bench's scale-out measurement
// (bench/README.md). Like gworker bench drain it runs a no-op handler for
// every runnable "noop" job until none is left (Worker.RunOnce); it also
// writes down the id of every job its handler ran, so that the harness can
// count, over all the processes of a run, how many times each job ran.
//
//	drainer -c URL -s SCHEMA -ids FILE [-j N] [-local-queue SIZE] [-refetch-delay D] [-batch-delay D]
//
// Only the tuning flags given change the worker's options: with none of
// them the worker runs on core's defaults, whatever they are at the time.
//
// So that several processes start together and their start-up is not
// timed, it connects, builds its worker, prints "ready" and waits for a
// line (or the end) of its standard input before it runs. When every
// outcome is recorded it writes the ids, one per line, to FILE and prints
//
//	jobs=N seconds=S jobs_per_sec=R
//	span_unix_ns=START,END
//
// where the span is the wall clock around RunOnce, for the harness to
// compare with its own timing from outside.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "drainer: %v\n", err)
		os.Exit(1)
	}
}

// options is the command line.
type options struct {
	url, schema, ids string
	timeout          time.Duration
	// set holds the names of the tuning flags given; only those touch
	// core.WorkerOptions.
	set          map[string]bool
	jobs         int
	localQueue   int
	refetchDelay time.Duration
	batchDelay   time.Duration
}

func parse(args []string) (*options, error) {
	fs := flag.NewFlagSet("drainer", flag.ContinueOnError)
	o := &options{set: map[string]bool{}}
	fs.StringVar(&o.url, "c", os.Getenv("DATABASE_URL"), "PostgreSQL connection string")
	fs.StringVar(&o.schema, "s", "graphile_worker", "graphile-worker schema")
	fs.StringVar(&o.ids, "ids", "", "write the id of every job run to this file, one per line (required)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.IntVar(&o.jobs, "j", 0, "WorkerOptions.Concurrency (not given: core's default)")
	fs.IntVar(&o.localQueue, "local-queue", 0, "LocalQueue.Size (not given: core's default)")
	fs.DurationVar(&o.refetchDelay, "refetch-delay", 0, "LocalQueue.RefetchDelay.Duration (not given: core's default)")
	fs.DurationVar(&o.batchDelay, "batch-delay", 0, "CompleteJobBatchDelay and FailJobBatchDelay (not given: core's default)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.url == "" || o.ids == "" {
		return nil, errors.New("-c (or $DATABASE_URL) and -ids are required")
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// apply sets on wo the tuning options given on the command line, and no
// other.
func (o *options) apply(wo *core.WorkerOptions) {
	if o.set["j"] {
		wo.Concurrency = o.jobs
	}
	if o.set["local-queue"] {
		wo.LocalQueue.Size = o.localQueue
	}
	if o.set["refetch-delay"] {
		wo.LocalQueue.RefetchDelay.Duration = o.refetchDelay
	}
	if o.set["batch-delay"] {
		wo.CompleteJobBatchDelay, wo.FailJobBatchDelay = o.batchDelay, o.batchDelay
	}
}

// ranIDs collects the ids of the jobs the handler ran.
type ranIDs struct {
	mu  sync.Mutex
	ids []int64
}

func (r *ranIDs) add(id int64) {
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
}

func (r *ranIDs) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// write puts one id per line.
func (r *ranIDs) write(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	bw := bufio.NewWriter(w)
	var buf []byte
	for _, id := range r.ids {
		buf = strconv.AppendInt(buf[:0], id, 10)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	db, err := pgxdriver.Open(ctx, o.url)
	if err != nil {
		return err
	}
	defer db.Close()
	ran := &ranIDs{ids: make([]int64, 0, 1<<16)}
	wo := core.WorkerOptions{
		Database:    db,
		Schema:      o.schema,
		SkipMigrate: true,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Tasks: []core.Task{core.RawTask("noop", func(_ context.Context, j *core.Job) error {
			ran.add(j.ID)
			return nil
		})},
	}
	o.apply(&wo)
	w, err := core.NewWorker(wo)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
		return err
	}
	// Any line, or the end of the input, starts the run.
	if _, err := bufio.NewReader(stdin).ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("wait for the start: %w", err)
	}
	start := time.Now()
	if err := w.RunOnce(ctx); err != nil {
		return err
	}
	end := time.Now()
	f, err := os.Create(o.ids)
	if err != nil {
		return err
	}
	if err := errors.Join(ran.write(f), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", o.ids, err)
	}
	n := ran.len()
	secs := end.Sub(start).Seconds()
	_, err = fmt.Fprintf(stdout, "jobs=%d seconds=%.3f jobs_per_sec=%.0f\nspan_unix_ns=%d,%d\n",
		n, secs, float64(n)/secs, start.UnixNano(), end.UnixNano())
	return err
}
