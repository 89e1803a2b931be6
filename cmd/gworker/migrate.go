package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
)

func migrateCommand() *command {
	return &command{
		name:     "migrate",
		synopsis: "[flags]",
		summary:  "install or upgrade the graphile-worker schema",
		help: `
Brings the schema up to graphile-worker 0.18's latest migration (20), creating
it if needed, exactly as graphile-worker --schema-only does. It is safe to run
while other Go or Node workers use the database, and from several processes at
once. Prints one line saying the schema is up to date.`,
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
	schema := opts.schemaName(e)
	db, err := opts.open(ctx, e)
	if err != nil {
		return err
	}
	defer db.Close()
	log := opts.logger(e, slog.LevelWarn)
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema, Logger: log}); err != nil {
		return err
	}
	// Report what the ledger says: a database that a newer graphile-worker
	// migrated (without a breaking change) is further than 20.
	rows, err := db.Query(ctx, "select coalesce(max(id), 0)::int from "+pgx.Identifier{schema}.Sanitize()+".migrations")
	if err != nil {
		return fmt.Errorf("read migrations of schema %q: %w", schema, err)
	}
	defer rows.Close()
	var latest int32
	if rows.Next() {
		if err := rows.Scan(&latest); err != nil {
			return fmt.Errorf("read migrations of schema %q: %w", schema, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read migrations of schema %q: %w", schema, err)
	}
	fmt.Fprintf(e.stdout, "schema %q is up to date (graphile-worker migration %d)\n", schema, latest)
	return nil
}
