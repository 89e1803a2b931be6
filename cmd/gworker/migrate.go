package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gworker/gworker/core"
)

func migrateCommand() *command {
	return &command{
		name:     "migrate",
		synopsis: "[flags]",
		summary:  "install or upgrade the graphile-worker schema",
		help: `
Brings the schema up to graphile-worker 0.18's latest migration (20), creating
it if needed, exactly as graphile-worker --schema-only does, along with
gworker's own tables (the worker registry). It is safe to run while other Go
or Node workers use the database, and from several processes at once.

Prints one line saying what it did:

  schema "graphile_worker" installed (graphile-worker migration 20)
  schema "graphile_worker" upgraded from graphile-worker migration 18 to 20
  schema "graphile_worker" is already up to date (graphile-worker migration 20)`,
		setup: func(fs *flagSet) action {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) > 0 {
					return usagef("migrate takes no arguments, got %q", args[0])
				}
				return migrate(ctx, e, fs.opts)
			}
		},
	}
}

func migrate(ctx context.Context, e *env, opts *commonFlags) error {
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	msg, err := migrateSchema(ctx, db, opts.schemaName(e), opts.logger(e, slog.LevelWarn))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, msg)
	return err
}

// migrateSchema migrates schema and says what it did, from the ledgers
// read before and after (so a database that a newer graphile-worker
// migrated without a breaking change is reported past 20).
func migrateSchema(ctx context.Context, db core.Database, schema string, log *slog.Logger) (string, error) {
	before, err := core.ReadMigrationState(ctx, db, schema)
	if err != nil {
		return "", fmt.Errorf("read the migrations of schema %q: %w", schema, err)
	}
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema, Logger: log}); err != nil {
		return "", err
	}
	after, err := core.ReadMigrationState(ctx, db, schema)
	if err != nil {
		return "", fmt.Errorf("read the migrations of schema %q: %w", schema, err)
	}
	return migrationReport(schema, before, after), nil
}

func migrationReport(schema string, before, after core.MigrationState) string {
	switch {
	case !before.Installed:
		return fmt.Sprintf("schema %q installed (graphile-worker migration %d)", schema, after.Latest)
	case before.Latest < after.Latest:
		return fmt.Sprintf("schema %q upgraded from graphile-worker migration %d to %d", schema, before.Latest, after.Latest)
	case before.Gworker < after.Gworker:
		return fmt.Sprintf("schema %q upgraded: gworker's own tables from version %d to %d (graphile-worker migration %d)",
			schema, before.Gworker, after.Gworker, after.Latest)
	}
	return fmt.Sprintf("schema %q is already up to date (graphile-worker migration %d)", schema, after.Latest)
}
