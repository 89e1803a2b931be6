package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// LatestMigration is the newest graphile-worker migration gworker applies
// (graphile-worker 0.18.0's 000020). gworker never records a higher id in the
// shared migrations ledger.
const LatestMigration = 20

// minServerVersionNum is the oldest PostgreSQL server supported
// (server_version_num), the same floor graphile-worker 0.18 checks;
// UnsupportedServerError reports a server below it.
const minServerVersionNum = 120000

// oldestUpgradable is the oldest ledger state gworker can upgrade from.
// Migration 11 rewrote the tables; earlier layouts are graphile-worker's to
// upgrade.
const oldestUpgradable = 11

// breakingMigrations are the graphile-worker migrations marked breaking. The
// ledger must carry the same flags, since Node compares against them.
var breakingMigrations = map[int]bool{1: true, 3: true, 11: true, 13: true, 14: true, 16: true, 19: true}

// MigrateOptions configures Migrate. The zero value migrates DefaultSchema
// and logs through slog.Default().
type MigrateOptions struct {
	// Schema is the schema to install into; "" means DefaultSchema.
	Schema string
	// Logger receives warnings such as "database is newer than gworker".
	Logger *slog.Logger
}

// Migrate brings the schema to graphile-worker migration 20, creating it if
// needed. It is safe to run from many processes at once, and alongside
// graphile-worker's own migrator.
//
// A fresh schema is installed in one transaction that also writes ledger rows
// 1-20. A schema that graphile-worker left at migration 11-19 gets the
// missing steps, each in its own transaction. It returns a
// *DatabaseTooOldError below 11, a *DatabaseNewerError when the schema has a
// breaking migration newer than LatestMigration (nothing is changed), and a
// *UnsupportedServerError before PostgreSQL 12.
//
// Then it creates or upgrades gworker's own objects (the tables named
// _private_gworker_*, such as the worker registry of dead-worker recovery),
// tracked in their own ledger, _private_gworker_migrations: graphile-worker's
// ledger never gets a row above 20.
func Migrate(ctx context.Context, db Database, opts MigrateOptions) error {
	if db == nil {
		return &ValidationError{Field: "db", Reason: "must not be nil"}
	}
	m, err := newMigrator(db, db.Begin, "MigrateOptions.Schema", opts.Schema, opts.Logger)
	if err != nil {
		return err
	}
	return m.migrate(ctx)
}

type migrator struct {
	ex     Executor
	begin  func(context.Context) (Transaction, error) // nil: run every step on ex
	schema string
	r      renderer
	log    *slog.Logger
}

// newMigrator returns a migrator for schema; field names the option that
// holds it, for the error about a bad name.
func newMigrator(ex Executor, begin func(context.Context) (Transaction, error), field, schema string, log *slog.Logger) (*migrator, error) {
	if schema == "" {
		schema = DefaultSchema
	}
	if err := checkSchemaName(field, schema); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &migrator{ex: ex, begin: begin, schema: schema, r: newRenderer(schema), log: log}, nil
}

// Clash codes: another migrator created the same object or ledger row first.
var clashCodes = map[string]bool{
	"23505": true, // unique_violation (ledger row, or a catalog row raced)
	"42P06": true, // duplicate_schema
	"42P07": true, // duplicate_table
	"42710": true, // duplicate_object
}

func (m *migrator) migrate(ctx context.Context) error {
	if err := m.checkServer(ctx); err != nil {
		return err
	}
	// Each pass makes progress or observes another migrator's; the bound only
	// guards against a bug turning into an endless loop.
	for pass := 0; pass < 4*LatestMigration; pass++ {
		latest, latestBreaking, err := m.readLedger(ctx)
		if isUndefined(err) {
			if err := m.bootstrap(ctx); err != nil && !clashCodes[sqlState(err)] {
				return fmt.Errorf("gworker: create migrations table in schema %q: %w", m.schema, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("gworker: read migrations of schema %q: %w", m.schema, err)
		}
		switch {
		case latestBreaking > LatestMigration:
			return &DatabaseNewerError{Schema: m.schema, LatestBreaking: latestBreaking, Known: LatestMigration}
		case latest > LatestMigration:
			m.log.Warn("gworker: the database schema is newer than this gworker; continuing since no newer migration is breaking",
				slog.String("schema", m.schema), slog.Int("database_migration", latest), slog.Int("known_migration", LatestMigration))
			return m.migrateGworker(ctx)
		case latest == LatestMigration:
			// graphile-worker's part is done; gworker's own objects follow.
			return m.migrateGworker(ctx)
		case latest == 0:
			err = m.install(ctx)
		case latest < oldestUpgradable:
			// graphile-worker migrates a new schema one committed step at a
			// time, so a schema it is creating right now passes through
			// migrations 1-10: wait for it rather than call it too old.
			if err := m.awaitOtherMigrator(ctx, latest); err != nil {
				return err
			}
			continue
		default:
			err = m.step(ctx, latest+1)
		}
		if err != nil && !clashCodes[sqlState(err)] {
			return err
		}
	}
	return fmt.Errorf("gworker: migrating schema %q made no progress; is another migrator stuck?", m.schema)
}

// Another migrator is taken to be at work on a ledger below
// oldestUpgradable while its newest row is younger than
// otherMigratorRecent; migrate then waits for the ledger to pass
// oldestUpgradable, re-reading it every otherMigratorPoll, and gives up when
// it has not moved for otherMigratorStall. graphile-worker commits each of
// its steps within milliseconds on a new schema.
const (
	otherMigratorRecent = time.Minute
	otherMigratorPoll   = 20 * time.Millisecond
	otherMigratorStall  = 10 * time.Second
)

// awaitOtherMigrator returns nil once the ledger moved past latest, or a
// *DatabaseTooOldError when nobody is moving it: the schema is genuinely
// older than gworker can upgrade.
func (m *migrator) awaitOtherMigrator(ctx context.Context, latest int) error {
	tooOld := &DatabaseTooOldError{Schema: m.schema, Latest: latest}
	var recent bool
	if _, err := queryOne(ctx, m.ex, m.r.render(
		"select coalesce(max(ts) > now() - $1::float8 * interval '1 second', false) from {{schema}}.migrations"),
		[]any{otherMigratorRecent.Seconds()}, &recent); err != nil {
		return fmt.Errorf("gworker: read migrations of schema %q: %w", m.schema, err)
	}
	if !recent {
		return tooOld
	}
	m.log.Info("gworker: schema is being created by another migrator; waiting for it",
		slog.String("schema", m.schema), slog.Int("database_migration", latest))
	deadline := time.Now().Add(otherMigratorStall)
	for time.Now().Before(deadline) {
		t := time.NewTimer(otherMigratorPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		now, _, err := m.readLedger(ctx)
		if err != nil {
			return fmt.Errorf("gworker: read migrations of schema %q: %w", m.schema, err)
		}
		if now != latest {
			return nil
		}
	}
	return tooOld
}

func (m *migrator) checkServer(ctx context.Context) error {
	var v string
	if _, err := queryOne(ctx, m.ex, "select current_setting('server_version_num')", nil, &v); err != nil {
		return fmt.Errorf("gworker: read server version: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("gworker: unexpected server_version_num %q", v)
	}
	if n < minServerVersionNum {
		return &UnsupportedServerError{VersionNum: n}
	}
	return nil
}

func (m *migrator) readLedger(ctx context.Context) (latest, latestBreaking int, err error) {
	var l, lb *int32
	_, err = queryOne(ctx, m.ex, m.r.render(
		"select max(id), max(id) filter (where breaking) from {{schema}}.migrations"), nil, &l, &lb)
	if l != nil {
		latest = int(*l)
	}
	if lb != nil {
		latestBreaking = int(*lb)
	}
	return latest, latestBreaking, err
}

func isUndefined(err error) bool {
	s := sqlState(err)
	return s == "42P01" || s == "42703" || s == "3F000" // table, column, schema
}

// bootstrap creates the schema and the migrations ledger the way
// graphile-worker does, including its upgrade of pre-0.17 ledgers that lack
// the breaking column.
func (m *migrator) bootstrap(ctx context.Context) error {
	return m.inTx(ctx, func(ex Executor) error {
		stmts := []string{
			"create schema if not exists {{schema}}",
			"create table if not exists {{schema}}.migrations (id int primary key, ts timestamptz default now() not null)",
			"alter table {{schema}}.migrations add column if not exists breaking boolean not null default false",
		}
		for _, s := range stmts {
			if _, err := ex.Exec(ctx, m.r.render(s)); err != nil {
				return err
			}
		}
		ids := make([]int64, 0, len(breakingMigrations))
		for id := range breakingMigrations {
			ids = append(ids, int64(id))
		}
		_, err := ex.Exec(ctx, m.r.render("update {{schema}}.migrations set breaking = true where id = any($1::bigint[])"), ids)
		return err
	})
}

// install creates the final schema and ledger rows 1-20 in one transaction.
// The ledger rows go first: a concurrent migrator blocks on them and then
// fails with a unique violation, which migrate treats as "already done".
func (m *migrator) install(ctx context.Context) error {
	return m.inTx(ctx, func(ex Executor) error {
		for id := 1; id <= LatestMigration; id++ {
			if err := m.record(ctx, ex, id); err != nil {
				return err
			}
		}
		for _, f := range []string{"tables.sql", "functions.sql", "view.sql"} {
			if _, err := ex.Exec(ctx, m.r.render(sqlFile(f))); err != nil {
				return fmt.Errorf("gworker: install schema %q (%s): %w", m.schema, f, err)
			}
		}
		for id := 1; id <= LatestMigration; id++ {
			if err := m.notify(ctx, ex, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// step applies one graphile-worker migration to a schema that graphile-worker
// itself brought to migration id-1.
func (m *migrator) step(ctx context.Context, id int) error {
	return m.inTx(ctx, func(ex Executor) error {
		if err := m.record(ctx, ex, id); err != nil {
			return err
		}
		if err := upgradeSteps[id](ctx, m, ex); err != nil {
			return fmt.Errorf("gworker: apply migration %d to schema %q: %w", id, m.schema, err)
		}
		return m.notify(ctx, ex, id)
	})
}

func (m *migrator) record(ctx context.Context, ex Executor, id int) error {
	_, err := ex.Exec(ctx, m.r.render("insert into {{schema}}.migrations (id, breaking) values ($1, $2)"),
		int32(id), breakingMigrations[id])
	return err
}

func (m *migrator) notify(ctx context.Context, ex Executor, id int) error {
	payload := fmt.Sprintf(`{"migrationNumber":%d,"breaking":%t}`, id, breakingMigrations[id])
	_, err := ex.Exec(ctx, "select pg_notify('worker:migrate', $1)", payload)
	return err
}

// inTx runs fn in a transaction of its own, or directly on the executor when
// the migrator works inside a transaction the caller holds.
func (m *migrator) inTx(ctx context.Context, fn func(Executor) error) (err error) {
	if m.begin == nil {
		return fn(m.ex)
	}
	tx, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// queryOne runs a query expected to return at most one row and scans it.
// It reports whether a row was found.
func queryOne(ctx context.Context, ex Executor, sql string, args []any, dest ...any) (bool, error) {
	rows, err := ex.Query(ctx, sql, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	if err := rows.Scan(dest...); err != nil {
		return false, err
	}
	return true, errors.Join(rows.Err(), rows.Close())
}
