package core

import (
	"context"
	"fmt"
	"log/slog"
)

// gworker's own schema objects live next to graphile-worker's, under names
// that start with _private_gworker_, and are tracked in a ledger of their
// own, <schema>._private_gworker_migrations, with the columns of
// graphile-worker's migrations table (id, ts, breaking). graphile-worker
// ignores both. Nothing of gworker's ever goes into <schema>.migrations:
// graphile-worker would take a row above 20 for a newer schema.

// gworkerLedger is the name of gworker's own migrations table.
const gworkerLedger = "_private_gworker_migrations"

// gworkerMigrations are gworker's own migrations in order: the id of each is
// its index plus one. Files live in sql/ and are rendered like the others.
var gworkerMigrations = []struct {
	file     string
	breaking bool
}{
	{file: "gworker_000001.sql"}, // _private_gworker_workers, for dead-worker recovery
	{file: "gworker_000002.sql"}, // _private_gworker_workers.tasks, for ListTasks
	{file: "gworker_000003.sql"}, // _private_gworker_throughput and _private_gworker_audit, for the admin page
}

// migrateGworker applies gworker's own migrations after graphile-worker's
// are in place, with the same concurrency-safe pattern: each migration runs
// in its own transaction that inserts its ledger row first, so a concurrent
// migrator blocks on that row and then fails with a unique violation, which
// counts as "already done".
func (m *migrator) migrateGworker(ctx context.Context) error {
	known := len(gworkerMigrations)
	for pass := 0; pass < 4*(known+1); pass++ {
		exists, latest, latestBreaking, err := m.readGworkerLedger(ctx)
		if err != nil {
			return fmt.Errorf("gworker: read %s of schema %q: %w", gworkerLedger, m.schema, err)
		}
		if !exists {
			if err := m.bootstrapGworker(ctx); err != nil && !clashCodes[sqlState(err)] {
				if m.mayNotCreate(err) {
					return nil
				}
				return fmt.Errorf("gworker: create %s in schema %q: %w", gworkerLedger, m.schema, err)
			}
			continue
		}
		switch {
		case latestBreaking > known:
			return fmt.Errorf("gworker: gworker's own ledger %s: %w", gworkerLedger,
				&DatabaseNewerError{Schema: m.schema, LatestBreaking: latestBreaking, Known: known})
		case latest > known:
			m.log.Warn("gworker: gworker's own objects in the schema are newer than this gworker; continuing since no newer one is breaking",
				slog.String("schema", m.schema), slog.Int("database_gworker_migration", latest), slog.Int("known_gworker_migration", known))
			return nil
		case latest == known:
			return nil
		}
		if err := m.gworkerStep(ctx, latest+1); err != nil && !clashCodes[sqlState(err)] {
			if m.mayNotCreate(err) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("gworker: migrating gworker's own objects in schema %q made no progress; is another migrator stuck?", m.schema)
}

// mayNotCreate reports (and logs) a permission error: a role allowed to use
// graphile-worker's schema but not to create tables in it still runs jobs,
// without what gworker's own objects provide (dead-worker recovery).
func (m *migrator) mayNotCreate(err error) bool {
	if sqlState(err) != "42501" { // insufficient_privilege
		return false
	}
	m.log.Warn("gworker: not allowed to create gworker's own tables in the schema; dead-worker recovery will be off until a role that may runs gworker's migrations",
		slog.String("schema", m.schema), slog.Any("error", err))
	return true
}

// readGworkerLedger reads gworker's ledger. It looks the table up first
// rather than letting the select fail, so that a migration running in a
// caller's transaction does not abort it.
func (m *migrator) readGworkerLedger(ctx context.Context) (exists bool, latest, latestBreaking int, err error) {
	if _, err = queryOne(ctx, m.ex, "select to_regclass($1) is not null", []any{m.r.quoted + "." + gworkerLedger}, &exists); err != nil || !exists {
		return exists, 0, 0, err
	}
	var l, lb *int32
	if _, err = queryOne(ctx, m.ex, m.r.render(
		"select max(id), max(id) filter (where breaking) from {{schema}}."+gworkerLedger), nil, &l, &lb); err != nil {
		return true, 0, 0, err
	}
	if l != nil {
		latest = int(*l)
	}
	if lb != nil {
		latestBreaking = int(*lb)
	}
	return true, latest, latestBreaking, nil
}

func (m *migrator) bootstrapGworker(ctx context.Context) error {
	return m.inTx(ctx, func(ex Executor) error {
		if err := m.exec(ctx, ex, "create table if not exists {{schema}}."+gworkerLedger+
			" (id int primary key, ts timestamptz default now() not null, breaking boolean not null default false)"); err != nil {
			return err
		}
		return m.exec(ctx, ex, "alter table {{schema}}."+gworkerLedger+" enable row level security")
	})
}

// gworkerStep applies gworker migration id. It sends no worker:migrate
// notification: graphile-worker's workers listen on that channel and would
// take the number for one of theirs.
func (m *migrator) gworkerStep(ctx context.Context, id int) error {
	mig := gworkerMigrations[id-1]
	return m.inTx(ctx, func(ex Executor) error {
		if _, err := ex.Exec(ctx, m.r.render("insert into {{schema}}."+gworkerLedger+" (id, breaking) values ($1, $2)"),
			int32(id), mig.breaking); err != nil {
			return err
		}
		if err := m.exec(ctx, ex, sqlFile(mig.file)); err != nil {
			return fmt.Errorf("gworker: apply gworker migration %d to schema %q: %w", id, m.schema, err)
		}
		return nil
	})
}
