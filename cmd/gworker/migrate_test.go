package main

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMigrateCreatesSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	want := fmt.Sprintf("schema %q is up to date (graphile-worker migration 20)\n", b.schema)
	for i := 0; i < 2; i++ { // the second run finds nothing to do
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

func TestMigrateReportsUnreachableDatabase(t *testing.T) {
	t.Parallel()
	r := runCLI(t.Context(), map[string]string{envDatabaseURL: "postgres://gworker@127.0.0.1:1/nowhere?connect_timeout=5"}, "migrate")
	assertOneLineError(t, r, "connect to PostgreSQL")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
}
