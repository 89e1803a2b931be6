package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parse([]string{"-c", "postgres://x", "-s", "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if o.jobs != 16 || o.batch != 500 || o.task != "noop" || o.schema != "s1" || o.timeout != 10*time.Minute {
		t.Errorf("defaults: %+v", o)
	}
	for _, bad := range [][]string{{"-c", "u", "extra"}, {"-c", "u", "-j", "0"}, {"-c", "u", "-batch", "0"}, {"-c", "u", "-timeout", "0s"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted it", bad)
		}
	}
}

func TestStatementsLockWithoutUpdating(t *testing.T) {
	t.Parallel()
	st := newStatements(`we"ird`, 250)
	for _, want := range []string{`from "we""ird"._private_jobs as j`, "j.job_queue_id is null", "limit 250 for update skip locked",
		"j.revision, j.flags", `from "we""ird"._private_tasks as t where t.identifier = any($1::text[])`} {
		if !strings.Contains(st.fetch, want) {
			t.Errorf("fetch lacks %q:\n%s", want, st.fetch)
		}
	}
	if !strings.HasPrefix(st.fetch, "select ") || strings.Contains(st.fetch, " set ") || strings.Count(st.fetch, "update ") != 1 {
		t.Errorf("the fetch updates rows:\n%s", st.fetch)
	}
	if st.delete != `delete from "we""ird"._private_jobs where id = any($1::bigint[])` {
		t.Errorf("delete: %s", st.delete)
	}
}

// setup migrates a fresh schema and adds n runnable no-op jobs.
func setup(t *testing.T, n int) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	pool, schema := pgtest.Pool(t), pgtest.Schema(t)
	if err := core.Migrate(ctx, pgxdriver.New(pool), core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatal(err)
	}
	addNoop(t, pool, schema, n)
	return pool, schema
}

func addNoop(t *testing.T, pool *pgxpool.Pool, schema string, n int) {
	t.Helper()
	s := pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(context.Background(), `select count(*) from `+s+`.add_jobs(array(
  select json_populate_record(null::`+s+`.job_spec, json_build_object('identifier', 'noop', 'payload', json_build_object('i', i)))
  from generate_series(1, $1::int) i))`, n); err != nil {
		t.Fatal(err)
	}
}

func TestDrainRunsEveryRunnableJobOnceAndDeletesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n = 2345
	pool, schema := setup(t, n)
	s := pgx.Identifier{schema}.Sanitize()
	// Jobs the prototype must leave alone: another task, a named queue, a
	// job that is not due yet.
	for _, sql := range []string{
		`select ` + s + `.add_job('other')`,
		`select ` + s + `.add_job('noop', queue_name => 'q')`,
		`select ` + s + `.add_job('noop', run_at => now() + interval '1 hour')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// Small batches and a few slots: many batches, several open at once.
	r, err := drain(ctx, pool, &options{schema: schema, task: "noop", jobs: 4, batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.runs != n || r.distinct != n || r.duplicates != 0 || r.remaining != 3 || r.seconds <= 0 {
		t.Errorf("drain = %+v, want %d runs of %d distinct jobs, 3 rows left", r, n, n)
	}
	var untouched int
	if err := pool.QueryRow(ctx, `select count(*) from `+s+`._private_jobs where attempts = 0 and locked_at is null`).Scan(&untouched); err != nil {
		t.Fatal(err)
	}
	if untouched != 3 {
		t.Errorf("%d of the 3 jobs left are untouched", untouched)
	}
	// No transaction of the run stays open.
	var idle int
	if err := pool.QueryRow(ctx, `select count(*) from pg_stat_activity where datname = current_database() and state like 'idle in transaction%' and strpos(query, $1) > 0`, schema).Scan(&idle); err != nil {
		t.Fatal(err)
	}
	if idle != 0 {
		t.Errorf("%d connections idle in a transaction after the drain", idle)
	}
}

func TestRunPrintsTheCountsAndFailsOnRowsLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := setup(t, 1200)
	url := pgtest.URL(t)
	var out strings.Builder
	if err := run(ctx, []string{"-c", url, "-s", schema, "-batch", "250"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "jobs=1200 seconds=") || lines[1] != "distinct=1200 duplicates=0 remaining=0" {
		t.Errorf("output:\n%s", out.String())
	}
	// A job it must not take is left: the run reports it and fails.
	if _, err := pool.Exec(ctx, `select `+pgx.Identifier{schema}.Sanitize()+`.add_job('other')`); err != nil {
		t.Fatal(err)
	}
	addNoop(t, pool, schema, 10)
	out.Reset()
	err := run(ctx, []string{"-c", url, "-s", schema}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 rows left") || !strings.Contains(out.String(), "distinct=10 duplicates=0 remaining=1") {
		t.Errorf("run with a foreign job left: %v\n%s", err, out.String())
	}
}
