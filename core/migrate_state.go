package core

import "context"

// MigrationState is how far a schema's migrations went, as its ledgers
// say: graphile-worker's (<schema>.migrations) and gworker's own.
type MigrationState struct {
	// Installed is false when the schema has no graphile-worker ledger:
	// Migrate would install it from scratch.
	Installed bool
	// Latest is the newest graphile-worker migration applied (0 when not
	// installed); LatestBreaking the newest breaking one.
	Latest, LatestBreaking int
	// Gworker is the newest of gworker's own migrations applied (0 when
	// none).
	Gworker int
}

// UpToDate reports whether Migrate has nothing left to do.
func (s MigrationState) UpToDate() bool {
	return s.Latest >= LatestMigration && s.Gworker >= len(gworkerMigrations)
}

// ReadMigrationState reads the migration ledgers of schema (empty means
// DefaultSchema) through ex, changing nothing: for tools that report what
// Migrate did, or that a schema is not installed.
func ReadMigrationState(ctx context.Context, ex Executor, schema string) (MigrationState, error) {
	m, err := newMigrator(ex, nil, "schema", schema, nil)
	if err != nil {
		return MigrationState{}, err
	}
	var st MigrationState
	if _, err := queryOne(ctx, ex, "select to_regclass($1) is not null", []any{m.r.quoted + ".migrations"}, &st.Installed); err != nil || !st.Installed {
		return st, err
	}
	if st.Latest, st.LatestBreaking, err = m.readLedger(ctx); err != nil {
		return st, err
	}
	_, st.Gworker, _, err = m.readGworkerLedger(ctx)
	return st, err
}
