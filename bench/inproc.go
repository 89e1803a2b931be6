package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// latencySample is one job's way from the adding client to its handler,
// read on one clock (the worker runs in this process).
type latencySample struct {
	// add is the add call, from just before it to its return, which comes
	// right after the server acknowledged the commit: AddRawJob is one
	// statement in its own transaction, and its row is read by then.
	add time.Duration
	// worker runs from that return to the handler's first line: the
	// worker's own share (notification, fetch, dispatch).
	worker time.Duration
}

func (s latencySample) total() time.Duration { return s.add + s.worker }

// startMark is what the handler reports: which job, and the time of its
// first line.
type startMark struct {
	id int
	at time.Time
}

// gworkerLatency runs a worker in this process (Run, listening) with opts
// and adds samples jobs with AddRawJob, one at a time, each after the
// previous one's handler started, after 50 warm-up jobs and a 0.5 s pause.
// With a gap, the worker is left idle between gap and 2 × gap (at random,
// so that adds do not keep step with any timer of the worker) before each
// add; without, the next add follows at once.
func (b *bench) gworkerLatency(ctx context.Context, opts core.WorkerOptions, samples int, gap time.Duration) ([]latencySample, error) {
	started := make(chan startMark, 1)
	opts.Database, opts.Schema, opts.SkipMigrate, opts.Logger = b.gw, schemaGworker, true, quietLogger()
	opts.Tasks = []core.Task{core.RawTask("latency", func(_ context.Context, j *core.Job) error {
		at := time.Now()
		var p struct{ ID int }
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return err
		}
		select {
		case started <- startMark{id: p.ID, at: at}:
		default:
		}
		return nil
	})}
	w, err := core.NewWorker(opts)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stop()
		<-done
	}()
	u := w.Utils()
	one := func(id int) (latencySample, error) {
		begin := time.Now()
		if _, err := u.AddRawJob(ctx, "latency", map[string]int{"id": id}, nil); err != nil {
			return latencySample{}, err
		}
		committed := time.Now()
		for {
			select {
			case <-ctx.Done():
				return latencySample{}, ctx.Err()
			case err := <-done:
				return latencySample{}, fmt.Errorf("worker stopped: %v", err)
			case got := <-started:
				if got.id == id {
					return latencySample{add: committed.Sub(begin), worker: got.at.Sub(committed)}, nil
				}
			}
		}
	}
	for i := 0; i < 50; i++ {
		if _, err := one(-1 - i); err != nil {
			return nil, err
		}
	}
	time.Sleep(500 * time.Millisecond)
	out := make([]latencySample, samples)
	for i := range out {
		if gap > 0 {
			t := time.NewTimer(gap + rand.N(gap))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		if out[i], err = one(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// millis converts durations to milliseconds with microsecond precision.
func millis(samples []latencySample, f func(latencySample) time.Duration) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = float64(f(s).Microseconds()) / 1000
	}
	return out
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
	opts := b.workerOptions(who)
	opts.Database, opts.Schema, opts.SkipMigrate, opts.Logger = rec, schemaGworker, true, quietLogger()
	opts.Tasks = []core.Task{core.RawTask("noop", func(context.Context, *core.Job) error { return nil })}
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

// sqlLimitMetric names a SQL-limit row: core's statements, or with held
// the design that holds a batch's locks in one transaction.
func sqlLimitMetric(clients int, held bool) metric {
	if held {
		return metric{name: fmt.Sprintf("%s, %d clients", sqlLimitHeld, clients), unit: "jobs/s"}
	}
	return metric{name: fmt.Sprintf("%s, %d clients", sqlLimitCore, clients), unit: "jobs/s"}
}

const (
	sqlLimitCore = "SQL limit"
	sqlLimitHeld = "SQL limit (locks held in one transaction)"
)

// pgbench measures the SQL limit: clients pgbench clients each repeat
// core's fetch of batch jobs and core's complete of them, as fast as the
// server allows, until pgbenchN jobs are gone. With held they repeat the
// held-lock design's transaction instead (heldPgbenchScript), on the same
// jobs, batch and clients.
func (b *bench) pgbench(ctx context.Context, clients int, held bool) (string, error) {
	m := sqlLimitMetric(clients, held)
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
	var script string
	var err error
	file := filepath.Join(b.work, "sqllimit.sql")
	if held {
		script, err = heldPgbenchScript(schemaGworker, b.sql.fetch, batch)
		file = filepath.Join(b.work, "sqllimit-held.sql")
	} else {
		script, err = pgbenchScript(b.sql.fetch, b.sql.complete, batch)
	}
	if err != nil {
		return fail(err)
	}
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
