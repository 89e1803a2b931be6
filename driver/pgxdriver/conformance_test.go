package pgxdriver_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The shared suite in each of pgx's query modes (execModes): it covers the
// values, rows, errors, transactions, cancellation and concurrency that
// this package's own tests once checked mode by mode.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, harness(m.mode))
		})
	}
}

func harness(mode pgx.QueryExecMode) conformance.Harness {
	return conformance.Harness{
		NewDatabase: func(t testing.TB) core.Database {
			cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
			if err != nil {
				t.Fatal(err)
			}
			cfg.ConnConfig.DefaultQueryExecMode = mode
			cfg.MaxConns = 4
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			return pgxdriver.New(pool)
		},
		BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
			tx, err := db.(*pgxdriver.Driver).Pool().Begin(ctx)
			if err != nil {
				return conformance.CallerTx{}, err
			}
			return conformance.CallerTx{Executor: pgxdriver.Tx(tx), Commit: tx.Commit, Rollback: tx.Rollback}, nil
		},
		NewSchema: pgtest.Schema,
	}
}
