// Command demo puts gworker through its paces in a few seconds: it adds
// 5,000 jobs in one statement and runs them with a worker, printing the
// progress and a summary.
//
// With $DATABASE_URL set it uses that database (and recreates the schema
// gworker_demo there); otherwise it starts a throwaway PostgreSQL server and
// removes it at the end.
//
//	go run ./examples/demo     # or: make demo
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

const (
	schema        = "gworker_demo" // the demo's own schema: dropped and recreated
	totalJobs     = 5000
	reportJobs    = 20 // in the serial queue "reports"
	flakyJobs     = 5  // fail on their first attempt
	concurrency   = 16
	pollInterval  = 200 * time.Millisecond
	retryDeadline = 30 * time.Second
)

// SendEmail is the payload of the send_email task.
type SendEmail struct {
	To       string `json:"to"`
	FailOnce bool   `json:"fail_once,omitempty"`
}

// TaskIdentifier names the task that runs SendEmail jobs.
func (SendEmail) TaskIdentifier() string { return "send_email" }

// BuildReport is the payload of the build_report task.
type BuildReport struct {
	Number int `json:"number"`
}

// TaskIdentifier names the task that runs BuildReport jobs.
func (BuildReport) TaskIdentifier() string { return "build_report" }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "\ndemo: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "\ndemo:", err)
		os.Exit(1)
	}
}

// stats is what the tasks record.
type stats struct {
	done, failedAttempts atomic.Int64

	mu            sync.Mutex
	reportsActive int
	reportsMax    int
	reportOrder   []int
}

func run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	fmt.Fprintf(out, "gworker demo: %s jobs through a PostgreSQL job queue\n\n", commas(totalJobs))

	// 1. A database.
	url := os.Getenv("DATABASE_URL")
	if url != "" {
		fmt.Fprintf(out, "%-12s the database in $DATABASE_URL\n", "PostgreSQL")
	} else {
		t := time.Now()
		srv, err := pgtest.Start(ctx, pgtest.Options{})
		if err != nil {
			return fmt.Errorf("start a throwaway PostgreSQL (or set DATABASE_URL): %w", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "demo: stopping PostgreSQL:", err)
			}
		}()
		url = srv.URL()
		fmt.Fprintf(out, "%-12s throwaway server (%s), started in %s; removed at the end\n", "PostgreSQL", srv.Source(), since(t))
	}
	db, err := pgxdriver.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()

	// 2. A fresh schema.
	t := time.Now()
	if _, err := db.Exec(ctx, `drop schema if exists "`+schema+`" cascade`); err != nil {
		return err
	}
	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		return err
	}
	if err := utils.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "%-12s %q created at graphile-worker migration %d in %s\n", "Schema", schema, core.LatestMigration, since(t))

	// 3. The jobs, in one statement. Reports get distinct, past run_at
	// values: a queue runs its jobs in run_at order.
	jobs := make([]core.NewJob, 0, totalJobs)
	base := time.Now().Add(-time.Minute)
	for i := range totalJobs {
		switch {
		case i%(totalJobs/reportJobs) == 0:
			n := len(jobs)/(totalJobs/reportJobs) + 1
			jobs = append(jobs, core.NewJob{Identifier: BuildReport{}.TaskIdentifier(), Payload: BuildReport{Number: n},
				Spec: core.JobSpec{QueueName: "reports", RunAt: base.Add(time.Duration(n) * time.Millisecond)}})
		default:
			p := SendEmail{To: "user" + strconv.Itoa(i) + "@example.com", FailOnce: i%(totalJobs/flakyJobs) == 1}
			jobs = append(jobs, core.NewJob{Identifier: p.TaskIdentifier(), Payload: p})
		}
	}
	t = time.Now()
	if _, err := utils.AddJobs(ctx, jobs); err != nil {
		return err
	}
	addTook := time.Since(t)
	fmt.Fprintf(out, "%-12s %s jobs with one AddJobs call in %s (%s jobs/s):\n", "Enqueued", commas(totalJobs), round(addTook), rate(totalJobs, addTook))
	fmt.Fprintf(out, "%-12s %6s send_email    parallel; %d of them fail on their first attempt\n", "", commas(totalJobs-reportJobs), flakyJobs)
	fmt.Fprintf(out, "%-12s %6s build_report  in the named queue \"reports\": one at a time, in order\n\n", "", commas(reportJobs))

	// 4. A worker with two typed tasks.
	st := &stats{}
	worker, err := core.NewWorker(core.WorkerOptions{
		Database:     db,
		Schema:       schema,
		Tasks:        []core.Task{core.NewTask(st.sendEmail), core.NewTask(st.buildReport)},
		Concurrency:  concurrency,
		PollInterval: pollInterval,
		SkipMigrate:  true,
		// Failed attempts are expected here and counted below; show only errors.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Running a worker (concurrency %d, poll interval %s) with RunOnce: it stops when no job is runnable.\n", concurrency, pollInterval)
	var running time.Duration
	left := int64(totalJobs)
	deadline := time.Now().Add(retryDeadline)
	for pass := 1; ; pass++ {
		t := time.Now()
		p := startProgress(out, st, running)
		err := worker.RunOnce(ctx)
		running += time.Since(t)
		p.stop(running)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if left, err = countJobs(ctx, db); err != nil {
			return err
		}
		fmt.Fprintf(out, "  pass %d finished after %s; %s left in the table\n", pass, round(time.Since(t)), plural(left, "job"))
		if left == 0 || time.Now().After(deadline) {
			break
		}
		wait, err := untilAllRunnable(ctx, db)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s failed once and wait for a retry (graphile-worker backs off e^attempts seconds:\n"+
			"  2.7s after a first failure); waiting %s until all are due, then running again\n", plural(left, "job"), round(wait))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}

	// 5. The summary.
	st.mu.Lock()
	inOrder := len(st.reportOrder) == reportJobs
	for i, n := range st.reportOrder {
		inOrder = inOrder && n == i+1
	}
	reportsMax := st.reportsMax
	st.mu.Unlock()
	done := st.done.Load()
	fmt.Fprintf(out, "\nSummary\n")
	fmt.Fprintf(out, "  %-20s %s (the worker ran for %s of it)\n", "total time", round(time.Since(start)), round(running))
	fmt.Fprintf(out, "  %-20s %s of %s (%s jobs/s while the worker ran)\n", "jobs completed", commas(done), commas(totalJobs), rate(done, running))
	fmt.Fprintf(out, "  %-20s %d (each job that failed succeeded on its retry)\n", "failed attempts", st.failedAttempts.Load())
	fmt.Fprintf(out, "  %-20s %d jobs, at most %d running at a time, in the order added: %s\n", `queue "reports"`, len(st.reportOrder), reportsMax, yesNo(inOrder))
	fmt.Fprintf(out, "  %-20s %s\n", "jobs left in table", commas(left))
	if left != 0 {
		return fmt.Errorf("%s still in the table after %s", plural(left, "job"), retryDeadline)
	}
	fmt.Fprintf(out, "\nNext: \"make test\" runs the test suite; README.md shows the Go API and the gworker command.\n")
	return nil
}

func (st *stats) sendEmail(ctx context.Context, job *core.Job, p SendEmail) error {
	if p.FailOnce && job.Attempts == 1 {
		st.failedAttempts.Add(1)
		return errors.New("smtp: 421 service not available, try again later (simulated)")
	}
	st.done.Add(1)
	return nil
}

func (st *stats) buildReport(ctx context.Context, job *core.Job, p BuildReport) error {
	st.mu.Lock()
	st.reportsActive++
	st.reportsMax = max(st.reportsMax, st.reportsActive)
	st.reportOrder = append(st.reportOrder, p.Number)
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.reportsActive--
		st.mu.Unlock()
	}()
	select { // a little work, so that a second report would overlap if the queue let it
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Millisecond):
	}
	st.done.Add(1)
	return nil
}

func countJobs(ctx context.Context, db core.Database) (int64, error) {
	rows, err := db.Query(ctx, `select count(*) from "`+schema+`"._private_jobs`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}

// untilAllRunnable is how long until every waiting job may run, on the
// database's clock.
func untilAllRunnable(ctx context.Context, db core.Database) (time.Duration, error) {
	rows, err := db.Query(ctx, `select coalesce(extract(epoch from max(run_at) - now()), 0)::float8
from "`+schema+`"._private_jobs where attempts < max_attempts`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var secs float64
	for rows.Next() {
		if err := rows.Scan(&secs); err != nil {
			return 0, err
		}
	}
	return max(time.Duration(secs*float64(time.Second)), 0) + 50*time.Millisecond, rows.Err()
}

// progress prints "done N/total (R jobs/s)" every 250ms while a pass runs:
// on one line rewritten in place on a terminal, else a line each time.
type progress struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	print func(elapsed time.Duration, final bool)
}

func startProgress(out io.Writer, st *stats, before time.Duration) *progress {
	tty := isTerminal(out)
	start := time.Now()
	p := &progress{stopc: make(chan struct{})}
	p.print = func(elapsed time.Duration, final bool) {
		line := fmt.Sprintf("  done %s/%s  (%s jobs/s)", commas(st.done.Load()), commas(totalJobs), rate(st.done.Load(), elapsed))
		switch {
		case tty && final:
			fmt.Fprintf(out, "\r%-60s\n", line)
		case tty:
			fmt.Fprintf(out, "\r%-60s", line)
		default:
			fmt.Fprintln(out, line)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case <-tick.C:
				p.print(before+time.Since(start), false)
			}
		}
	}()
	return p
}

func (p *progress) stop(total time.Duration) {
	close(p.stopc)
	p.wg.Wait()
	p.print(total, true)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func since(t time.Time) string { return round(time.Since(t)).String() }

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return commas(int64(float64(n) / d.Seconds()))
}

// commas formats n with thousands separators: 12345 is "12,345".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return commas(n) + " " + noun + "s"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
