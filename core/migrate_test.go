package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// catalog describes every object of a schema as sorted lines, with the
// schema's own name replaced by S, so two schemas can be compared and a
// schema can be compared with the contract. Function bodies are left out:
// behaviour tests cover them. gworker's own objects (_private_gworker_*) are
// left out too, since they are not graphile-worker's; see
// TestMigrateKeepsGworkerObjectsOutOfNodesLedger.
func catalog(t *testing.T, b *bundle, schema string) []string {
	t.Helper()
	const q = `
with ns as (select oid from pg_namespace where nspname = $1)
select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
  || case when a.attnotnull then ' not null' else '' end
  || coalesce(' default ' || case when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end, '')
  || coalesce(' generated (' || case when a.attgenerated = 's' then pg_get_expr(d.adbin, d.adrelid) end || ') stored', '')
  || case a.attidentity when 'a' then ' identity always' when 'd' then ' identity by default' else '' end
from pg_attribute a
join pg_class c on c.oid = a.attrelid and c.relnamespace = (select oid from ns) and c.relkind in ('r', 'v')
  and c.relname !~ '^_private_gworker_'
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attnum > 0 and not a.attisdropped
union all
select 'constraint ' || c.relname || '.' || con.conname || ' ' || pg_get_constraintdef(con.oid)
from pg_constraint con join pg_class c on c.oid = con.conrelid
where con.connamespace = (select oid from ns) and c.relname !~ '^_private_gworker_'
union all
select 'index ' || i.indexname || ' ' || i.indexdef from pg_indexes i where i.schemaname = $1
  and i.tablename !~ '^_private_gworker_'
union all
select 'function ' || p.proname || '(' || pg_get_function_arguments(p.oid) || ') returns '
  || pg_get_function_result(p.oid) || ' language ' || l.lanname || ' volatility ' || p.provolatile::text
  || case when p.proisstrict then ' strict' else '' end
  || case when p.prosecdef then ' security definer' else '' end
from pg_proc p join pg_language l on l.oid = p.prolang
where p.pronamespace = (select oid from ns)
union all
select 'relation ' || c.relname || ' kind ' || c.relkind::text || case when c.relrowsecurity then ' rls' else '' end
from pg_class c where c.relnamespace = (select oid from ns) and c.relkind in ('r', 'v', 'S', 'c')
  and c.relname !~ '^_private_gworker_'
union all
select 'type-attribute ' || t.typname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
from pg_type t join pg_attribute a on a.attrelid = t.typrelid
where t.typnamespace = (select oid from ns) and t.typtype = 'c'
  and (select relkind from pg_class where oid = t.typrelid) = 'c'
union all
select 'trigger ' || tg.tgname from pg_trigger tg join pg_class c on c.oid = tg.tgrelid
where c.relnamespace = (select oid from ns) and not tg.tgisinternal
union all
select 'migration ' || id || case when breaking then ' breaking' else '' end
from ` + "%s" + `.migrations`
	rows, err := b.pool.Query(b.ctx, strings.Replace(q, "%s", pgx.Identifier{schema}.Sanitize(), 1), schema)
	if err != nil {
		t.Fatalf("read catalog: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("read catalog: %v", err)
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	for i, l := range lines {
		l = strings.ReplaceAll(l, quoted+".", "S.")
		lines[i] = strings.ReplaceAll(l, schema+".", "S.")
	}
	slices.Sort(lines)
	return lines
}

// The final schema of graphile-worker 0.18.0 (migration 20), as the catalog
// shows it. It was checked against a schema that graphile-worker 0.18.0
// itself migrated.
var wantCatalog = readGolden("testdata/catalog.golden")

func readGolden(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func diffLines(got, want []string) string {
	var buf strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			buf.WriteString("missing: " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			buf.WriteString("unexpected: " + l + "\n")
		}
	}
	return buf.String()
}

func TestMigrateFreshInstallMatchesContract(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got := catalog(t, b, b.schema)
	if os.Getenv("GWORKER_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile("testdata/catalog.golden", []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if len(wantCatalog) == 0 {
		t.Fatal("testdata/catalog.golden is missing or empty")
	}
	if d := diffLines(got, wantCatalog); d != "" {
		t.Fatalf("catalog differs from graphile-worker 0.18.0's final schema:\n%s", d)
	}
	// Spot checks that read as the contract, independent of the golden file.
	for _, want := range []string{
		"constraint _private_jobs.jobs_key_key1 UNIQUE (key)",
		"constraint _private_jobs.jobs_pkey1 PRIMARY KEY (id)",
		"constraint _private_job_queues.job_queues_pkey1 PRIMARY KEY (id)",
		"index jobs_main_index CREATE INDEX jobs_main_index ON S._private_jobs USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id) WHERE (is_available = true)",
		"relation _private_jobs kind r rls",
		"relation jobs_id_seq1 kind S",
		"migration 16 breaking",
		"migration 20",
		"type-attribute job_spec.max_attempts smallint",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("catalog lacks %q", want)
		}
	}
	for _, l := range got {
		if strings.HasPrefix(l, "column jobs.payload") {
			t.Errorf("the jobs view must not expose the payload: %s", l)
		}
		if strings.HasPrefix(l, "trigger ") {
			t.Errorf("the final schema has no triggers: %s", l)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	before := catalog(t, b, b.schema)
	var ts1 time.Time
	if err := b.pool.QueryRow(b.ctx, b.sql("select max(ts) from S.migrations")).Scan(&ts1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := core.Migrate(b.ctx, b.db, core.MigrateOptions{Schema: b.schema}); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	if d := diffLines(catalog(t, b, b.schema), before); d != "" {
		t.Fatalf("second migrate changed the schema:\n%s", d)
	}
	var ts2 time.Time
	if err := b.pool.QueryRow(b.ctx, b.sql("select max(ts) from S.migrations")).Scan(&ts2); err != nil {
		t.Fatal(err)
	}
	if !ts1.Equal(ts2) || b.queryInt(t, "select count(*) from S.migrations") != 20 {
		t.Fatalf("ledger rewritten: ts %v -> %v", ts1, ts2)
	}
}

func TestMigrateConcurrentMigratorsBothSucceedOnce(t *testing.T) {
	t.Parallel()
	b := setupUnmigrated(t)
	// Separate pools, as two processes would have.
	dbs := []core.Database{pgxdriver.New(pgtest.Pool(t)), pgxdriver.New(pgtest.Pool(t)), b.db}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	start := make(chan struct{})
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = core.Migrate(b.ctx, db, core.MigrateOptions{Schema: b.schema})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	if n := b.queryInt(t, "select count(*) from S.migrations"); n != 20 {
		t.Fatalf("ledger has %d rows, want 20", n)
	}
	if d := diffLines(catalog(t, b, b.schema), wantCatalog); d != "" {
		t.Fatalf("catalog after concurrent migration:\n%s", d)
	}
}

func TestMigrateUpgradesLedgerAt18To20(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Graphile-worker 0.16 leaves migration 18: no rows 19 and 20, and
	// add_job / add_jobs without migration 20's guard. Rebuild that state by
	// removing what 19 and 20 added.
	b.exec(t, "delete from S.migrations where id > 18")
	b.exec(t, "drop function S.add_job(text, json, text, timestamptz, int, text, int, text[], text)")
	b.exec(t, "drop function S.add_jobs(S.job_spec[], boolean)")
	if err := b.utils.Migrate(b.ctx); err != nil {
		t.Fatalf("migrate from 18: %v", err)
	}
	if d := diffLines(catalog(t, b, b.schema), wantCatalog); d != "" {
		t.Fatalf("catalog after upgrade from 18:\n%s", d)
	}
	job, err := b.utils.AddRawJob(b.ctx, "after_upgrade", map[string]int{"n": 1}, nil)
	if err != nil || job.TaskIdentifier != "after_upgrade" {
		t.Fatalf("add job after upgrade: %+v, %v", job, err)
	}
}

func TestMigrateUpgradesFromMigration14(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Rebuild what graphile-worker 0.14 leaves at migration 14: unprefixed
	// tables, no view, the statement trigger that notified, the leftover
	// functions of migration 1, no force_unlock_workers, a ledger without the
	// breaking column.
	for _, s := range []string{
		"drop view S.jobs",
		"drop function S.force_unlock_workers(text[])",
		"alter table S._private_jobs rename to jobs",
		"alter table S._private_job_queues rename to job_queues",
		"alter table S._private_tasks rename to tasks",
		"alter table S._private_known_crontabs rename to known_crontabs",
		"create function S.tg__update_timestamp() returns trigger language plpgsql as $$ begin return new; end $$",
		"create function S.jobs__increase_job_queue_count() returns trigger language plpgsql as $$ begin return new; end $$",
		"create function S.jobs__decrease_job_queue_count() returns trigger language plpgsql as $$ begin return new; end $$",
		"create function S.tg_jobs__after_insert() returns trigger language plpgsql as $$ begin perform pg_notify('jobs:insert', ''); return new; end $$",
		"create trigger _900_after_insert after insert on S.jobs for each statement execute procedure S.tg_jobs__after_insert()",
		"delete from S.migrations where id > 14",
		"alter table S.migrations drop column breaking",
	} {
		b.exec(t, s)
	}
	if err := b.utils.Migrate(b.ctx); err != nil {
		t.Fatalf("migrate from 14: %v", err)
	}
	if d := diffLines(catalog(t, b, b.schema), wantCatalog); d != "" {
		t.Fatalf("catalog after upgrade from 14:\n%s", d)
	}
}

func TestMigrateRefusesNewerBreakingMigration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "insert into S.migrations (id, breaking) values (21, true)")
	before := catalog(t, b, b.schema)
	err := b.utils.Migrate(b.ctx)
	var newer *core.DatabaseNewerError
	if !errors.As(err, &newer) {
		t.Fatalf("err = %v, want *DatabaseNewerError", err)
	}
	if newer.LatestBreaking != 21 || newer.Known != 20 || newer.Schema != b.schema {
		t.Fatalf("error fields = %+v", newer)
	}
	if d := diffLines(catalog(t, b, b.schema), before); d != "" {
		t.Fatalf("a refused migration changed the schema:\n%s", d)
	}
}

func TestMigrateWarnsOnNewerNonBreakingMigration(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "insert into S.migrations (id, breaking) values (21, false)")
	var buf syncBuffer
	err := core.Migrate(b.ctx, b.db, core.MigrateOptions{Schema: b.schema, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "database_migration=21") {
		t.Fatalf("no warning logged; log was %q", out)
	}
}

func TestMigrateRefusesDatabaseOlderThan11(t *testing.T) {
	t.Parallel()
	b := setupUnmigrated(t)
	b.exec(t, "create schema "+b.q)
	b.exec(t, "create table S.migrations (id int primary key, ts timestamptz default now() not null)")
	// Written an hour ago: a schema nobody is migrating any more.
	b.exec(t, "insert into S.migrations (id, ts) select generate_series(1, 10), now() - interval '1 hour'")
	err := b.utils.Migrate(b.ctx)
	var old *core.DatabaseTooOldError
	if !errors.As(err, &old) || old.Latest != 10 {
		t.Fatalf("err = %v, want *DatabaseTooOldError at 10", err)
	}
	if !strings.Contains(err.Error(), "graphile-worker") {
		t.Fatalf("error does not say what to do: %v", err)
	}
	if n := b.queryInt(t, "select count(*) from S.migrations"); n != 10 {
		t.Fatalf("ledger changed to %d rows", n)
	}
}

func TestMigrateAcceptsOddAndHostileSchemaNames(t *testing.T) {
	t.Parallel()
	parent := setupUnmigrated(t)
	// The hostile name would drop this table if it were spliced into SQL.
	parent.exec(t, "create table if not exists y (id int)")
	for _, name := range []string{
		`my "odd" schema`,
		`x; drop table y`,
		`it's $gw$ $$ tricky`,
		`Ünïcødé-Schema`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupUnmigrated(t)
			schema := name + " " + b.schema[len(b.schema)-6:] // unique per run
			t.Cleanup(func() {
				_, _ = b.pool.Exec(context.Background(), "drop schema if exists "+pgx.Identifier{schema}.Sanitize()+" cascade")
			})
			u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Migrate(b.ctx); err != nil {
				t.Fatalf("migrate %q: %v", schema, err)
			}
			job, err := u.AddRawJob(b.ctx, "task", map[string]string{"s": schema}, &core.JobSpec{JobKey: "k", QueueName: "q"})
			if err != nil {
				t.Fatalf("add job in %q: %v", schema, err)
			}
			if job.TaskIdentifier != "task" || job.QueueName != "q" {
				t.Fatalf("job = %+v", job)
			}
			if _, err := u.RemoveJob(b.ctx, "k"); err != nil {
				t.Fatalf("remove job: %v", err)
			}
			var exists bool
			if err := b.pool.QueryRow(b.ctx, "select to_regclass('public.y') is not null").Scan(&exists); err != nil || !exists {
				t.Fatalf("table y was dropped: exists=%v err=%v", exists, err)
			}
			if d := diffLines(catalog(t, b, schema), wantCatalog); d != "" {
				t.Fatalf("catalog of %q:\n%s", schema, d)
			}
		})
	}
}

func TestMigrateRejectsInvalidSchemaNames(t *testing.T) {
	t.Parallel()
	b := setupUnmigrated(t)
	for _, name := range []string{strings.Repeat("s", 64), "nul\x00byte"} {
		err := core.Migrate(b.ctx, b.db, core.MigrateOptions{Schema: name})
		var ve *core.ValidationError
		if !errors.As(err, &ve) || ve.Field != "MigrateOptions.Schema" {
			t.Errorf("schema %q: err = %v, want a ValidationError for MigrateOptions.Schema", name, err)
		}
	}
}

func TestMigrateWithoutDatabaseReturnsAnError(t *testing.T) {
	t.Parallel()
	err := core.Migrate(context.Background(), nil, core.MigrateOptions{})
	var ve *core.ValidationError
	if !errors.As(err, &ve) || ve.Field != "db" {
		t.Fatalf("Migrate(nil) = %v, want a ValidationError for db", err)
	}
}

// Not parallel: notifications are server-wide, and while a sequential test
// runs no other test of this package migrates anything.
func TestMigrateNotifiesEachMigration(t *testing.T) {
	b := setupUnmigrated(t)
	conn, err := pgx.Connect(b.ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(b.ctx, `listen "worker:migrate"`); err != nil {
		t.Fatal(err)
	}
	if err := b.utils.Migrate(b.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for id := 1; id <= 20; id++ {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("waiting for notification %d: %v", id, err)
		}
		breaking := slices.Contains([]int{1, 3, 11, 13, 14, 16, 19}, id)
		want := fmt.Sprintf(`{"migrationNumber":%d,"breaking":%t}`, id, breaking)
		if n.Channel != "worker:migrate" || n.Payload != want {
			t.Fatalf("notification %d = %s %s, want worker:migrate %s", id, n.Channel, n.Payload, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = testkit.Buffer
