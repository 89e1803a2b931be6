package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// envRunAsCommand makes the test binary act as the gworker command, for
// tests that need a worker in a process of its own.
const envRunAsCommand = "GWORKER_TEST_RUN_AS_COMMAND"

func TestMain(m *testing.M) {
	// Tasks run by in-process workers are supervised by this test binary
	// (on Linux; see supervise_linux.go).
	superviseIfAsked()
	if os.Getenv(envRunAsCommand) != "" {
		os.Unsetenv(envRunAsCommand)
		main()
	}
	os.Exit(pgtest.Main(m))
}

// bundle is a test's database: its own schema on the shared server.
type bundle struct {
	ctx    context.Context
	url    string
	schema string
	pool   *pgxpool.Pool
	q      string // quoted schema, for raw SQL
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	schema := pgtest.Schema(t)
	return &bundle{ctx: ctx, url: pgtest.URL(t), schema: schema, pool: pgtest.Pool(t), q: pgx.Identifier{schema}.Sanitize()}
}

// env is the environment a command sees in these tests: the test database
// and schema.
func (b *bundle) env() map[string]string {
	return map[string]string{envDatabaseURL: b.url, envSchema: b.schema}
}

// cli runs gworker with the bundle's environment.
func (b *bundle) cli(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(b.ctx, b.env(), args...)
}

// migrate installs the schema through the command.
func (b *bundle) migrate(t *testing.T) {
	t.Helper()
	if r := b.cli(t, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d, stderr: %s", r.code, r.stderr)
	}
}

// registerWorker plants w in the schema's worker registry.
func (b *bundle) registerWorker(t *testing.T, w testkit.RegisteredWorker) {
	t.Helper()
	testkit.RegisterWorker(t, b.ctx, pgxdriver.New(b.pool), b.schema, w)
}

// sql replaces "S." with the quoted schema.
func (b *bundle) sql(s string) string { return strings.ReplaceAll(s, "S.", b.q+".") }

func (b *bundle) queryRow(t *testing.T, s string, args []any, dest ...any) {
	t.Helper()
	if err := b.pool.QueryRow(b.ctx, b.sql(s), args...).Scan(dest...); err != nil {
		t.Fatalf("query %s: %v", s, err)
	}
}

func (b *bundle) count(t *testing.T, s string, args ...any) int {
	t.Helper()
	var n int
	b.queryRow(t, s, args, &n)
	return n
}

// result is what a command run produced.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(ctx context.Context, environment map[string]string, args ...string) result {
	var stdout, stderr syncBuffer
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return environment[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer = testkit.Buffer

// writeScript writes an executable shell script under dir.
func writeScript(t *testing.T, dir, rel, body string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertOneLineError checks a failed run: non-zero exit, and exactly one
// line on stderr starting with "gworker: " and containing every want.
func assertOneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit status 0, want non-zero; stdout: %s", r.stdout)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Fatalf("stderr is not one line:\n%s", r.stderr)
	}
	if !strings.HasPrefix(line, "gworker: ") {
		t.Errorf("stderr %q does not start with \"gworker: \"", line)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("stderr %q does not mention %q", line, w)
		}
	}
}
