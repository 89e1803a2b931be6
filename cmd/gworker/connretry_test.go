package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestConnErrorTransient(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("connect: %w", &pgconn.PgError{Code: code}) }
	for _, tt := range []struct {
		name      string
		err       error
		transient bool
	}{
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"no socket file yet", fmt.Errorf("dial unix: %w", os.ErrNotExist), true},
		{"reset during start-up", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"closed during start-up", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), true},
		{"timed out", fmt.Errorf("connect: %w", context.DeadlineExceeded), true},
		{"cannot connect now", pg("57P03"), true},
		{"too many connections", pg("53300"), true},
		{"temporary DNS failure", &net.DNSError{Err: "server misbehaving", Name: "db", IsTemporary: true}, true},
		{"PgBouncer, PostgreSQL down", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "08P01",
			Message: "server login has been failing, try again later (server_login_retry)"}), true},
		{"PgBouncer, no server connection in time", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "08P01", Message: "query_wait_timeout"}), true},
		// A statement of the start (the migration, a registration) on a
		// connection that the server's shutdown or a crash ended.
		{"session ended by a shutdown", fmt.Errorf("gworker: read migrations: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"session ended by another backend's crash", fmt.Errorf("gworker: register tasks: %w", &pgconn.PgError{Code: "57P02"}), true},
		{"connection gone", fmt.Errorf("gworker: register tasks: %w", pgconn.ErrConnClosed), true},
		{"protocol violation", fmt.Errorf("connect: %w", &pgconn.PgError{Code: "08P01", Message: "invalid startup packet layout"}), false},
		{"authentication failed", pg("28P01"), false},
		{"no such role or refused by pg_hba.conf", pg("28000"), false},
		{"no such database", pg("3D000"), false},
		{"no such host", &net.DNSError{Err: "no such host", Name: "db", IsNotFound: true}, false},
		{"something else", errors.New("x509: certificate signed by unknown authority"), false},
		{"a statement's own error", fmt.Errorf("gworker: install: %w", &pgconn.PgError{Code: "42501"}), false},
		{"a newer schema", &core.DatabaseNewerError{Schema: "s", LatestBreaking: 99, Known: core.LatestMigration}, false},
		{"interrupted", fmt.Errorf("gworker: read migrations: %w", context.Canceled), false},
	} {
		if got := classifyConnError(tt.err).transient(); got != tt.transient {
			t.Errorf("%s (%v): transient = %v, want %v", tt.name, tt.err, got, tt.transient)
		}
	}
	if _, err := pgx.ParseConfig("postgres://localhost:notaport/db"); err == nil || classifyConnError(err).transient() {
		t.Errorf("a connection string that does not parse (%v) must not be waited out", err)
	}
}

// A server that comes up after gworker run started: run waits for it with
// one warning, then migrates and runs the job, instead of exiting.
func TestRunWaitsForALateServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, environment, tasks, out := serverWithJob(t, ctx, "late")
	if err := srv.Shutdown(pgtest.ShutdownFast); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--once", "--tasks", tasks}, io.Discard, &stderr, func(k string) string { return environment[k] })
	}()
	testkit.Eventually(t, "run to say it waits for the database", func() bool {
		return strings.Contains(stderr.String(), "the database is not available yet")
	})
	serverBack(t, ctx, srv, done, &stderr, out)
}

// Failures that do not clear by themselves end run at once.
func TestRunFailsFastOnAMissingDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database_here"
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	tasks := t.TempDir()
	writeScript(t, tasks, "t.sh", "exit 0\n")
	r := runCLI(ctx, map[string]string{envDatabaseURL: u.String()}, "run", "--once", "--tasks", tasks)
	if ctx.Err() != nil {
		t.Fatalf("run waited for a database that does not exist; stderr:\n%s", r.stderr)
	}
	if r.code != exitError || !strings.Contains(r.stderr, `no such database "no_such_database_here"`) ||
		strings.Contains(r.stderr, "retrying") {
		t.Errorf("run: exit %d, stderr:\n%s\nwant exit %d at once, saying the database does not exist", r.code, r.stderr, exitError)
	}
}

// A server that goes down after run's first connection, while the worker
// migrates: run waits for it, with one warning for the whole outage, then
// starts, instead of exiting on the migration's lost connection.
func TestRunWaitsWhenTheServerGoesDownDuringItsStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, environment, tasks, out := serverWithJob(t, ctx, "blip")

	// Hold the migration ledger, so that run's migration, once connected,
	// waits on it; the server then goes down under that statement.
	holder, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(ctx, "begin; lock table graphile_worker.migrations in access exclusive mode"); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"run", "--once", "--verbose", "--tasks", tasks}, io.Discard, &stderr, func(k string) string { return environment[k] })
	}()
	testkit.Eventually(t, "run's migration to wait on the held ledger", func() bool {
		var waiting bool
		err := holder.QueryRow(ctx, `select exists (select from pg_locks
			where relation = 'graphile_worker.migrations'::regclass and not granted)`).Scan(&waiting)
		if err != nil {
			t.Logf("looking for run's migration: %v", err)
		}
		if len(done) > 0 {
			t.Fatalf("run exited before the server went down; stderr:\n%s", stderr.String())
		}
		return err == nil && waiting
	})
	if err := srv.Shutdown(pgtest.ShutdownFast); err != nil {
		t.Fatal(err)
	}
	// The outage has phases: the migration's session ended by the
	// shutdown, then no server to connect to. One warning covers them.
	testkit.Eventually(t, "run to try again and find no server", func() bool {
		return strings.Contains(stderr.String(), "the database is still not available: no PostgreSQL server answers")
	})
	serverBack(t, ctx, srv, done, &stderr, out)
}

// A migration that fails for a reason of its own, not the connection's,
// ends run at once, saying why.
func TestRunFailsFastOnASchemaNewerThanItself(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	if _, err := b.pool.Exec(b.ctx, fmt.Sprintf("insert into %s.migrations (id, breaking) values ($1, true)", b.q),
		core.LatestMigration+5); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	tasks := t.TempDir()
	writeScript(t, tasks, "t.sh", "exit 0\n")
	r := runCLI(ctx, b.env(), "run", "--once", "--tasks", tasks)
	if ctx.Err() != nil {
		t.Fatalf("run waited on a schema newer than itself; stderr:\n%s", r.stderr)
	}
	if want := fmt.Sprintf("has breaking migration %d but this gworker knows only up to", core.LatestMigration+5); r.code != exitSchemaNewer ||
		!strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "retrying") {
		t.Errorf("run: exit %d, stderr:\n%s\nwant exit %d at once, saying %q", r.code, r.stderr, exitSchemaNewer, want)
	}
}

// serverWithJob starts a server of the test's own, migrates its database
// and adds one job of the given task, whose script notes each run in out.
// It returns the server (stopped at the test's end), run's environment for
// it, and the tasks directory.
func serverWithJob(t *testing.T, ctx context.Context, task string) (srv *pgtest.Server, environment map[string]string, tasks, out string) {
	t.Helper()
	srv, err := pgtest.StartLocal(ctx, pgtest.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Logf("stop the server: %v", err)
		}
	})
	environment = map[string]string{envDatabaseURL: srv.URL()}
	tasks, out = t.TempDir(), t.TempDir()
	writeScript(t, tasks, task+".sh", reportScript(out))
	for _, args := range [][]string{{"migrate"}, {"add", task}} {
		if r := runCLI(ctx, environment, args...); r.code != 0 {
			t.Fatalf("%s: exit %d, stderr: %s", args[0], r.code, r.stderr)
		}
	}
	return srv, environment, tasks, out
}

// serverBack checks that run, waiting out the server's outage, has not
// exited; restarts the server; and checks that run then gets through: exit
// 0, one warning for the whole outage, a line when the worker started, and
// the job run once (a file in out).
func serverBack(t *testing.T, ctx context.Context, srv *pgtest.Server, done <-chan int, stderr *syncBuffer, out string) {
	t.Helper()
	select {
	case code := <-done:
		t.Fatalf("run exited (status %d) while the server was down; stderr:\n%s", code, stderr.String())
	default:
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run --once: exit %d after the server came up; stderr:\n%s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatalf("run did not finish after the server came up; stderr:\n%s", stderr.String())
	}
	s := stderr.String()
	if n := strings.Count(s, "the database is not available yet"); n != 1 {
		t.Errorf("run warned %d times about the outage; want once. stderr:\n%s", n, s)
	}
	if !strings.Contains(s, "the database is available; the worker started") {
		t.Errorf("run did not say when it got through; stderr:\n%s", s)
	}
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 1 {
		t.Errorf("the job ran %d times (%v); want once. stderr:\n%s", len(entries), err, s)
	}
}
