package bundriver_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The shared suite, with bun on its own pgdriver (pgdriver's listener) and
// on pgx's stdlib (a pgx listener with the pool's settings).
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		open func(t testing.TB) *sql.DB
	}{
		{"pgdriver", openPgdriver},
		{"pgx_stdlib", openStdlib},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, harness(c.open))
		})
	}
}

func openPgdriver(t testing.TB) *sql.DB {
	return sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(pgtest.URL(t))))
}

func openStdlib(t testing.TB) *sql.DB {
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	return stdlib.OpenDB(*cfg)
}

func harness(open func(t testing.TB) *sql.DB) conformance.Harness {
	return conformance.Harness{
		NewDatabase: func(t testing.TB) core.Database {
			sqldb := open(t)
			sqldb.SetMaxOpenConns(4)
			db := bun.NewDB(sqldb, pgdialect.New())
			t.Cleanup(func() { db.Close() })
			return bundriver.New(db)
		},
		BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
			d := db.(*bundriver.Driver)
			tx, err := d.DB().BeginTx(ctx, nil)
			if err != nil {
				return conformance.CallerTx{}, err
			}
			return conformance.CallerTx{
				Executor: bundriver.Tx(tx),
				Commit:   func(context.Context) error { return tx.Commit() },
				Rollback: func(context.Context) error { return tx.Rollback() },
			}, nil
		},
		NewSchema: pgtest.Schema,
	}
}
