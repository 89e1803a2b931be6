// Command riverbench is River's side of gworker's benchmark (bench/README.md).
// It is a separate module so that gworker's own go.mod never depends on
// River. The orchestrator (go run ./bench) runs it as a subprocess:
//
//	riverbench -url URL -schema S -mode MODE [-n N] [-samples K]
//
// Modes:
//
//	migrate  install River's tables in S (rivermigrate); every mode does it first
//	fill     truncate river_job and insert N no-op jobs with InsertManyFast (not timed)
//	drain    work every available job with a no-op worker; prints jobs=N seconds=S jobs_per_sec=R
//	insert   time one InsertMany of N jobs; prints jobs=N seconds=S jobs_per_sec=R
//	insertfast  the same with InsertManyFast (COPY)
//	latency  K sequential inserts, each awaited until its job starts; prints latency_ms=a,b,...
//
// The client uses the settings of River's own `river bench` (FetchCooldown 2ms,
// FetchPollInterval 20ms, MaxWorkers 2000 on the default queue), which its
// author tuned for throughput.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// NoopArgs is the benchmark job: its worker does nothing.
type NoopArgs struct {
	Num int `json:"num"`
}

func (NoopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[NoopArgs]
	started chan<- int // latency mode: told when a job starts
}

func (w *noopWorker) Work(_ context.Context, j *river.Job[NoopArgs]) error {
	if w.started != nil {
		w.started <- j.Args.Num
	}
	return nil
}

type options struct {
	url, schema, mode string
	n, samples        int
	maxWorkers        int
	fetchCooldown     time.Duration
	fetchPoll         time.Duration
	timeout           time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", os.Getenv("DATABASE_URL"), "PostgreSQL connection string")
	flag.StringVar(&o.schema, "schema", "gwbench_river", "schema for River's tables")
	flag.StringVar(&o.mode, "mode", "", "migrate, fill, drain, insert, insertfast or latency")
	flag.IntVar(&o.n, "n", 10000, "jobs to fill or insert")
	flag.IntVar(&o.samples, "samples", 200, "latency samples")
	flag.IntVar(&o.maxWorkers, "max-workers", 2000, "MaxWorkers of the default queue (river bench: 2000)")
	flag.DurationVar(&o.fetchCooldown, "fetch-cooldown", 2*time.Millisecond, "Config.FetchCooldown (river bench: 2ms)")
	flag.DurationVar(&o.fetchPoll, "fetch-poll-interval", 20*time.Millisecond, "Config.FetchPollInterval (river bench: 20ms)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := run(ctx, &o); err != nil {
		fmt.Fprintf(os.Stderr, "riverbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	if o.url == "" {
		return errors.New("-url or $DATABASE_URL is required")
	}
	pool, err := pgxpool.New(ctx, o.url)
	if err != nil {
		return err
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	driver := riverpgxv5.New(pool)
	if _, err := pool.Exec(ctx, "create schema if not exists "+pgx.Identifier{o.schema}.Sanitize()); err != nil {
		return err
	}
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: o.schema, Logger: log})
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	table := pgx.Identifier{o.schema, "river_job"}.Sanitize()

	started := make(chan int, 1)
	workers := river.NewWorkers()
	w := &noopWorker{}
	if o.mode == "latency" {
		w.started = started
	}
	river.AddWorker(workers, w)
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     o.fetchCooldown,
		FetchPollInterval: o.fetchPoll,
		Logger:            log,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.maxWorkers}},
		Schema:            o.schema,
		Workers:           workers,
	})
	if err != nil {
		return err
	}
	params := func(n int) []river.InsertManyParams {
		p := make([]river.InsertManyParams, n)
		for i := range p {
			p[i].Args = NoopArgs{Num: i}
		}
		return p
	}
	report := func(n int, d time.Duration) {
		fmt.Printf("jobs=%d seconds=%.3f jobs_per_sec=%.0f\n", n, d.Seconds(), float64(n)/d.Seconds())
	}

	switch o.mode {
	case "migrate":
		return nil
	case "fill":
		if _, err := pool.Exec(ctx, "truncate "+table); err != nil {
			return err
		}
		for left := o.n; left > 0; {
			batch := min(left, 50_000)
			if _, err := client.InsertManyFast(ctx, params(batch)); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			left -= batch
		}
		return nil
	case "insert", "insertfast":
		p := params(o.n)
		begin := time.Now()
		if o.mode == "insert" {
			_, err = client.InsertMany(ctx, p)
		} else {
			_, err = client.InsertManyFast(ctx, p)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", o.mode, err)
		}
		report(o.n, time.Since(begin))
		return nil
	case "drain":
		return drain(ctx, pool, client, table, report)
	case "latency":
		return latency(ctx, client, started, o.samples)
	}
	return fmt.Errorf("unknown -mode %q", o.mode)
}

// drain works every available job, timing from the client's start to the
// last completion event (as river bench does: the event comes after the
// completer recorded the job).
func drain(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], table string, report func(int, time.Duration)) error {
	var want int
	if err := pool.QueryRow(ctx, "select count(*) from "+table+" where state = 'available'").Scan(&want); err != nil {
		return err
	}
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: max(want, 1000),
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancel()
	begin := time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	var last time.Time
	for got := 0; got < want; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d of %d jobs done: %w", got, want, ctx.Err())
		case ev := <-events:
			if ev == nil {
				return errors.New("drain: event channel closed")
			}
			if ev.Kind != river.EventKindJobCompleted {
				return fmt.Errorf("drain: job %d: unexpected event %s", ev.Job.ID, ev.Kind)
			}
			got++
			last = time.Now()
		}
	}
	if want == 0 {
		last = time.Now()
	}
	report(want, last.Sub(begin))
	return client.Stop(ctx)
}

// latency inserts jobs one at a time and waits for each to start.
func latency(ctx context.Context, client *river.Client[pgx.Tx], started <-chan int, samples int) error {
	if err := client.Start(ctx); err != nil {
		return err
	}
	one := func(num int) (time.Duration, error) {
		begin := time.Now()
		if _, err := client.Insert(ctx, NoopArgs{Num: num}, nil); err != nil {
			return 0, err
		}
		for {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case got := <-started:
				if got == num {
					return time.Since(begin), nil
				}
			}
		}
	}
	// Warm up, as graphile-worker's latencyTest does, then let it settle.
	for i := 0; i < 50; i++ {
		if _, err := one(-1 - i); err != nil {
			return err
		}
	}
	time.Sleep(500 * time.Millisecond)
	ms := make([]string, samples)
	for i := range ms {
		d, err := one(i)
		if err != nil {
			return err
		}
		ms[i] = strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
	}
	fmt.Printf("latency_ms=%s\n", strings.Join(ms, ","))
	return client.Stop(ctx)
}
