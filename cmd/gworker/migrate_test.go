package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMigrateCreatesSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, want := range []string{ // the second run finds nothing to do
		fmt.Sprintf("schema %q installed (graphile-worker migration 20)\n", b.schema),
		fmt.Sprintf("schema %q is already up to date (graphile-worker migration 20)\n", b.schema),
	} {
		r := b.cli(t, "migrate")
		if r.code != 0 || r.stdout != want || r.stderr != "" {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %q; want stdout %q", i, r.code, r.stdout, r.stderr, want)
		}
		if n := b.count(t, "select max(id) from S.migrations"); n != 20 {
			t.Fatalf("run %d: max(id) of migrations = %d, want 20", i, n)
		}
	}
	if n := b.count(t, "select count(*) from S.migrations where breaking"); n != 7 {
		t.Errorf("%d breaking migrations recorded, want 7", n)
	}
}

func TestMigrateFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := pgtest.Schema(t)
	environment := map[string]string{envDatabaseURL: "postgres://127.0.0.1:1/nowhere", envSchema: b.schema}
	r := runCLI(b.ctx, environment, "migrate", "-c", b.url, "--schema", other)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var installed, untouched bool
	b.queryRow(t, "select to_regclass($1) is not null, to_regclass($2) is null",
		[]any{pgx.Identifier{other, "migrations"}.Sanitize(), b.q + ".migrations"}, &installed, &untouched)
	if !installed || !untouched {
		t.Errorf("flag schema installed: %v, environment schema untouched: %v; want both", installed, untouched)
	}
	// The long flag forms go before the command too.
	r = runCLI(b.ctx, environment, "--connection", b.url, "-s", other, "migrate")
	if r.code != 0 {
		t.Fatalf("flags before the command: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestMigrateSaysItUpgradedFromWhere(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.migrate(t)
	// What graphile-worker 0.16 leaves: migration 18, without what 19 and
	// 20 added.
	for _, s := range []string{
		"delete from S.migrations where id > 18",
		"drop function S.add_job(text, json, text, timestamptz, int, text, int, text[], text)",
		"drop function S.add_jobs(S.job_spec[], boolean)",
	} {
		if _, err := b.pool.Exec(b.ctx, b.sql(s)); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	r := b.cli(t, "migrate")
	if want := fmt.Sprintf("schema %q upgraded from graphile-worker migration 18 to 20\n", b.schema); r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
}

func TestCommandsOnAMissingSchemaSayToMigrate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, args := range [][]string{{"add", "t"}, {"cancel", "1"}, {"workers"}, {"sweep", "--dry-run"}} {
		r := b.cli(t, args...)
		assertOneLineError(t, r, fmt.Sprintf("schema %q is not installed", b.schema), `run "gworker migrate"`)
	}
}

// connectionFailure checks that a failed connection says what failed on
// its first line, then the details, each address's text once.
func connectionFailure(t *testing.T, url string, want ...string) {
	t.Helper()
	r := runCLI(t.Context(), map[string]string{envDatabaseURL: url}, "migrate")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "gworker: ") || !strings.HasPrefix(lines[1], "  ") {
		t.Fatalf("stderr is not a headline and a line of details:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("headline %q does not say %q", lines[0], w)
		}
	}
	// pgx repeats its text per address and TLS attempt; the details must not.
	parts := strings.Split(lines[1], "; ")
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			if parts[i] == parts[j] {
				t.Errorf("details repeat %q:\n%s", parts[i], lines[1])
			}
		}
	}
}

func TestConnectionFailuresSayWhatFailedFirst(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		connectionFailure(t, "postgres://gworker@127.0.0.1:1/nowhere?connect_timeout=5", "no PostgreSQL server answers at 127.0.0.1:1")
	})
	t.Run("no such database", func(t *testing.T) {
		t.Parallel()
		v := *u
		v.Path = "/no_such_db"
		connectionFailure(t, v.String(), `no such database "no_such_db" on `+u.Host)
	})
	t.Run("no such role", func(t *testing.T) {
		t.Parallel()
		v := *u
		v.User = url.User("no_such_role")
		connectionFailure(t, v.String(), `user "no_such_role" may not connect`)
	})
	t.Run("bad URL", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t.Context(), map[string]string{envDatabaseURL: "postgres://localhost:notaport/db"}, "migrate")
		if !strings.HasPrefix(r.stderr, "gworker: invalid connection string\n") || r.code != exitError {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}
