package core_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// Some tests need a worker in another process: one they can SIGKILL, or one
// that only the database connects to them. They run the test binary again
// with helperEnv set; TestMain then runs helperWorker instead of the tests.

// helperEnv carries a helperConfig, as JSON, to the helper process.
const helperEnv = "GWORKER_TEST_HELPER_WORKER"

type helperConfig struct {
	URL, Schema string
	// Jobs is how many "long" jobs the worker runs at once; it says
	// "started <worker id>" once that many run and it listens.
	Jobs int
	// Cancel makes each handler wait for its context, record the cause in
	// the schema's causes table and return; without it handlers never
	// return (until the process is killed).
	Cancel bool
}

// helperWorker is the helper process's main: a worker on the schema whose
// "long" handlers record each start in the runs table. It stops cleanly,
// exit status 0, when its standard input closes.
func helperWorker(raw string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "helper worker: "+format+"\n", args...)
		return 2
	}
	var c helperConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return fail("bad %s: %v", helperEnv, err)
	}
	// Never outlive the test that started it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	db, err := pgxdriver.Open(ctx, c.URL)
	if err != nil {
		return fail("open: %v", err)
	}
	defer db.Close()
	table := func(name string) string { return pgx.Identifier{c.Schema}.Sanitize() + "." + name }
	started := make(chan struct{}, c.Jobs)
	var events testkit.Events
	w, err := core.NewWorker(core.WorkerOptions{
		Database:     testkit.Listening(db, &events),
		Schema:       c.Schema,
		SkipMigrate:  true,
		Concurrency:  c.Jobs,
		PollInterval: 50 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Recovery:     core.RecoveryOptions{HeartbeatInterval: 100 * time.Millisecond, SweepPolicy: core.SweepPolicy{StaleThreshold: time.Second}},
		Tasks: []core.Task{core.RawTask("long", func(ctx context.Context, job *core.Job) error {
			if _, err := db.Exec(ctx, "insert into "+table("runs")+" (job_id, attempts, worker) values ($1, $2, $3)",
				job.ID, int32(job.Attempts), job.LockedBy); err != nil {
				return err
			}
			started <- struct{}{}
			<-ctx.Done()
			if !c.Cancel {
				select {} // until killed
			}
			cause := "not a *core.CancelledError: " + fmt.Sprint(context.Cause(ctx))
			if ce := (*core.CancelledError)(nil); errors.As(context.Cause(ctx), &ce) {
				cause = ce.Reason
			}
			_, err := db.Exec(context.WithoutCancel(ctx), "insert into "+table("causes")+" (job_id, cause, worker) values ($1, $2, $3)",
				job.ID, cause, job.LockedBy)
			return errors.Join(ctx.Err(), err)
		})},
	})
	if err != nil {
		return fail("NewWorker: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	listening := make(chan struct{})
	go func() {
		if events.Await(ctx, testkit.Listened, 1) == nil {
			close(listening)
		}
	}()
	for i := 0; i < c.Jobs; i++ {
		select {
		case <-started:
		case err := <-done:
			return fail("Run returned before the jobs started: %v", err)
		}
	}
	select {
	case <-listening:
	case err := <-done:
		return fail("Run returned before it listened: %v", err)
	}
	fmt.Println("started " + w.ID())
	if err := <-done; err != nil {
		return fail("Run: %v", err)
	}
	return 0
}

// helperProcess is a running helper worker.
type helperProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	// ID is the worker's id, as it writes it to locked_by.
	ID string
}

// startHelper starts a helper worker on b's schema and waits until its
// jobs run. The test's cleanup kills it if it still runs.
func startHelper(t *testing.T, b *bundle, c helperConfig) *helperProcess {
	t.Helper()
	c.URL, c.Schema = pgtest.URL(t), b.schema
	cfg, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg))
	p := &helperProcess{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("helper process stderr:\n%s", p.stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "started ") {
				line <- l
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		p.ID = strings.TrimPrefix(l, "started ")
	case <-time.After(60 * time.Second):
		t.Fatalf("the helper process did not start its jobs; stderr:\n%s", p.stderr.String())
	}
	return p
}

// stop closes the helper's standard input, so that it shuts down cleanly,
// and returns its exit error.
func (p *helperProcess) stop(t *testing.T) error {
	t.Helper()
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		return errors.New("the helper process did not stop within 60s of its stdin closing")
	}
}
