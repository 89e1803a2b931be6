package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// BenchmarkDrain profiles gworker's drain in one process, for pprof. It
// runs only with -bench (never in go test ./...):
//
//	go test ./bench -run '^$' -bench Drain -benchtime 3x -cpuprofile cpu.out
//	go tool pprof -top bench.test cpu.out
//
// Each iteration adds 100,000 no-op jobs (not timed) and drains them with
// the tuned configuration (24 slots, local queue 500, refetch delay 10ms);
// BenchmarkDrainDefault uses core's defaults on 5,000 jobs. The database is
// $DATABASE_URL, else a throwaway server with durable commits.
func BenchmarkDrain(b *testing.B) {
	benchmarkDrain(b, 100_000, core.WorkerOptions{
		Concurrency: 24,
		LocalQueue:  core.LocalQueueOptions{Size: 500, RefetchDelay: core.RefetchDelayOptions{Duration: 10 * time.Millisecond}},
	})
}

func BenchmarkDrainDefault(b *testing.B) {
	benchmarkDrain(b, 100_000, core.WorkerOptions{})
}

func benchmarkDrain(b *testing.B, n int, opts core.WorkerOptions) {
	ctx := context.Background()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		srv, err := pgtest.Start(ctx, pgtest.Options{Settings: durableSettings})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Stop() })
		url = srv.URL()
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	d := &db{pool: pool}
	if err := d.exec(ctx, "drop schema if exists "+q(schemaGworker)+" cascade"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.exec(context.Background(), "drop schema if exists "+q(schemaGworker)+" cascade") })
	gw := pgxdriver.New(pool)
	if err := core.Migrate(ctx, gw, core.MigrateOptions{Schema: schemaGworker}); err != nil {
		b.Fatal(err)
	}
	rec := newRecorder(gw)
	opts.Database, opts.Schema, opts.SkipMigrate, opts.Logger = rec, schemaGworker, true, quietLogger()
	opts.Tasks = []core.Task{core.RawTask("noop", func(context.Context, *core.Job) error { return nil })}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := d.emptyJobs(ctx, schemaGworker); err != nil {
			b.Fatal(err)
		}
		if err := d.fillGraphile(ctx, schemaGworker, n); err != nil {
			b.Fatal(err)
		}
		if err := d.settle(ctx, schemaGworker); err != nil {
			b.Fatal(err)
		}
		w, err := core.NewWorker(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		begin := time.Now()
		if err := w.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		total += time.Since(begin)
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "jobs/s")
	for k, c := range rec.counts() {
		b.Logf("%s: %d statements, %.2f ms each on average", k, c, float64(rec.average(k).Microseconds())/1000)
	}
}
