package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gworker/gworker/core"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// gworkerLatency runs a worker in this process (Run, listening) with opts
// and measures, samples times, the time from the start of AddRawJob to the
// start of the job's handler, one job at a time, after 50 warm-up jobs.
func (b *bench) gworkerLatency(ctx context.Context, opts core.WorkerOptions, samples int) (total, add []float64, err error) {
	started := make(chan int, 1)
	opts.Database, opts.Schema, opts.SkipMigrate, opts.Logger = b.gw, schemaGworker, true, quietLogger()
	opts.Tasks = []core.Task{core.RawTask("latency", func(_ context.Context, j *core.Job) error {
		var p struct{ ID int }
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return err
		}
		select {
		case started <- p.ID:
		default:
		}
		return nil
	})}
	w, err := core.NewWorker(opts)
	if err != nil {
		return nil, nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stop()
		<-done
	}()
	u := w.Utils()
	// one returns the time from the add to the handler's start, and how
	// long the add call itself took (its durable commit included).
	one := func(id int) (time.Duration, time.Duration, error) {
		begin := time.Now()
		if _, err := u.AddRawJob(ctx, "latency", map[string]int{"id": id}, nil); err != nil {
			return 0, 0, err
		}
		added := time.Since(begin)
		for {
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case err := <-done:
				return 0, 0, fmt.Errorf("worker stopped: %v", err)
			case got := <-started:
				if got == id {
					return time.Since(begin), added, nil
				}
			}
		}
	}
	for i := 0; i < 50; i++ {
		if _, _, err := one(-1 - i); err != nil {
			return nil, nil, err
		}
	}
	time.Sleep(500 * time.Millisecond)
	total, add = make([]float64, samples), make([]float64, samples)
	for i := range total {
		d, a, err := one(i)
		if err != nil {
			return nil, nil, err
		}
		total[i] = float64(d.Microseconds()) / 1000
		add[i] = float64(a.Microseconds()) / 1000
	}
	return total, add, nil
}

// gworkerInsert times one Utils.AddJobs call of n no-op jobs, or with bulk
// one Utils.BulkAddJobs call.
func (b *bench) gworkerInsert(ctx context.Context, n int, bulk bool) (float64, error) {
	u, err := core.NewUtils(b.gw, core.UtilsOptions{Schema: schemaGworker, Logger: quietLogger()})
	if err != nil {
		return 0, err
	}
	jobs := make([]core.NewJob, n)
	for i := range jobs {
		jobs[i] = core.NewJob{Identifier: "noop", Payload: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}
	}
	begin := time.Now()
	added := 0
	if bulk {
		added, err = u.BulkAddJobs(ctx, jobs)
	} else {
		var rows []*core.Job
		rows, err = u.AddJobs(ctx, jobs)
		added = len(rows)
	}
	secs := time.Since(begin).Seconds()
	if err != nil {
		return 0, err
	}
	if added != n {
		return 0, fmt.Errorf("added %d jobs, want %d", added, n)
	}
	return float64(n) / secs, nil
}

// statements drains n jobs in this process through a recorder and notes how
// many statements of each kind the worker sent: the round trips per job.
func (b *bench) statements(ctx context.Context, who string, n int) (string, error) {
	if err := b.fill(ctx, who, n); err != nil {
		return "", err
	}
	rec := newRecorder(b.gw)
	opts := core.WorkerOptions{Database: rec, Schema: schemaGworker, SkipMigrate: true, Logger: quietLogger(),
		Tasks: []core.Task{core.RawTask("noop", func(context.Context, *core.Job) error { return nil })}}
	if who == cTuned {
		t := b.cfg.tuned
		opts.Concurrency = t.jobs
		opts.LocalQueue = core.LocalQueueOptions{Size: t.localQueue, RefetchDelay: core.RefetchDelayOptions{Duration: t.refetchDelay}}
		opts.CompleteJobBatchDelay, opts.FailJobBatchDelay = t.batchDelay, t.batchDelay
	}
	w, err := core.NewWorker(opts)
	if err != nil {
		return "", err
	}
	begin := time.Now()
	if err := w.RunOnce(ctx); err != nil {
		return "", err
	}
	secs := time.Since(begin).Seconds()
	counts := rec.counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	total := 0
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d × %.2f ms", k, counts[k], float64(rec.average(k).Microseconds())/1000))
		total += counts[k]
	}
	note := fmt.Sprintf("%s, in-process drain of %d jobs (%.0f jobs/s): %d statements = %.1f per 1000 jobs (%s)",
		who, n, float64(n)/secs, total, float64(total)*1000/float64(n), strings.Join(parts, ", "))
	b.stmtNotes = append(b.stmtNotes, note)
	return note, nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench measures the SQL limit: clients pgbench clients each repeat
// core's fetch of batch jobs and core's complete of them, as fast as the
// server allows, until pgbenchN jobs are gone.
func (b *bench) pgbench(ctx context.Context, clients int) (string, error) {
	m := metric{name: fmt.Sprintf("SQL limit, %d clients", clients), unit: "jobs/s"}
	fail := func(err error) (string, error) {
		b.res.fail(m, cPgbench, err)
		return "", err
	}
	if b.pgbenchBin == "" {
		return fail(errors.New("pgbench not found (pg_config --bindir, /usr/lib/postgresql/*/bin, $PATH)"))
	}
	batch := b.cfg.batch
	per := b.cfg.pgbenchN / (batch * clients)
	if per < 1 {
		return fail(fmt.Errorf("-pgbench-n %d is less than one batch per client", b.cfg.pgbenchN))
	}
	n := per * batch * clients
	script, err := pgbenchScript(b.sql.fetch, b.sql.complete, batch)
	if err != nil {
		return fail(err)
	}
	file := filepath.Join(b.work, "sqllimit.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return fail(err)
	}
	if err := b.fill(ctx, cGworker, n); err != nil {
		return fail(err)
	}
	out, _, err := b.runCmd(ctx, nil, b.pgbenchBin, "-n", "-M", "prepared", "-f", file,
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(clients), "-t", strconv.Itoa(per), b.url)
	if err != nil {
		return fail(err)
	}
	mm := tpsLine.FindStringSubmatch(out)
	if mm == nil {
		return fail(fmt.Errorf("no tps line in pgbench's output: %s", tailString(out, 400)))
	}
	tps, _ := strconv.ParseFloat(mm[1], 64)
	left, err := b.db.remaining(ctx, schemaGworker)
	if err != nil {
		return fail(err)
	}
	secs := float64(per*clients) / tps
	rate := float64(int64(n)-left) / secs
	b.res.add(m, cPgbench, rate)
	return fmt.Sprintf("%s jobs/s (%d transactions of %d jobs, %d left)", groupThousands(int64(rate)), per*clients, batch, left), nil
}

// fetchTime times core's fetch of batch jobs with n jobs waiting: EXPLAIN
// (ANALYZE, BUFFERS) of the statement, rolled back, fetchRepeats times;
// each Execution Time is a sample.
func (b *bench) fetchTime(ctx context.Context, n int) (string, error) {
	m := metric{name: fmt.Sprintf("fetch %d jobs, %s waiting", b.cfg.batch, short(n)), unit: "ms"}
	fail := func(err error) (string, error) {
		b.res.fail(m, cGworker, err)
		return "", err
	}
	if err := b.fill(ctx, cGworker, n); err != nil {
		return fail(err)
	}
	tasks, err := literal(b.sql.fetch.args[1])
	if err != nil {
		return fail(err)
	}
	stmt, err := bind(b.sql.fetch.sql, map[int]string{1: "'bench-explain'", 2: tasks})
	if err != nil {
		return fail(err)
	}
	// core writes the batch size into the text; measure the batch we say.
	stmt = limitRE.ReplaceAllString(stmt, "limit "+strconv.Itoa(b.cfg.batch))
	conn, err := b.db.pool.Acquire(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Release()
	explain := func(format string) (string, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return "", err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		rows, err := tx.Query(ctx, "explain (analyze, buffers, format "+format+") "+stmt)
		if err != nil {
			return "", err
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return "", err
			}
			lines = append(lines, s)
		}
		return strings.Join(lines, "\n"), rows.Err()
	}
	var times []float64
	for i := 0; i < b.cfg.fetchRepeats; i++ {
		out, err := explain("json")
		if err != nil {
			return fail(err)
		}
		var plan []struct {
			Execution float64 `json:"Execution Time"`
		}
		if err := json.Unmarshal([]byte(out), &plan); err != nil || len(plan) != 1 {
			return fail(fmt.Errorf("read EXPLAIN JSON: %v", err))
		}
		times = append(times, plan[0].Execution)
	}
	text, err := explain("text")
	if err != nil {
		return fail(err)
	}
	b.plans = append(b.plans, fmt.Sprintf("fetch of %d jobs with %d waiting:\n%s", b.cfg.batch, n, text))
	for _, t := range times {
		b.res.add(m, cGworker, t)
	}
	return fmt.Sprintf("median %.2f ms", median(times)), nil
}
