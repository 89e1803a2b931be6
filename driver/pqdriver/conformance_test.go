package pqdriver_test

import (
	"context"
	"testing"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The shared suite: as Open sets it up, with lib/pq's binary_parameters
// (one round trip per statement, the PgBouncer setting), and poll-only as
// New(db, PollOnly()) makes it.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		params   string
		noListen bool
	}{
		{"default", "", false},
		{"binary_parameters", "binary_parameters=yes", false},
		{"poll_only", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conformance.Run(t, harness(c.params, c.noListen))
		})
	}
}

func harness(params string, noListen bool) conformance.Harness {
	return conformance.Harness{
		NewDatabase: func(t testing.TB) core.Database {
			dsn := withParams(pgtest.URL(t), params)
			d, err := pqdriver.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			d.DB().SetMaxOpenConns(4)
			t.Cleanup(func() { d.Close() })
			if noListen {
				return pqdriver.New(d.DB(), pqdriver.PollOnly())
			}
			return d
		},
		BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
			tx, err := db.(*pqdriver.Driver).DB().BeginTx(ctx, nil)
			if err != nil {
				return conformance.CallerTx{}, err
			}
			return conformance.CallerTx{
				Executor: pqdriver.Tx(tx),
				Commit:   func(context.Context) error { return tx.Commit() },
				Rollback: func(context.Context) error { return tx.Rollback() },
			}, nil
		},
		NoListen:  noListen,
		NewSchema: pgtest.Schema,
	}
}

func withParams(url, params string) string {
	if params == "" {
		return url
	}
	for _, c := range url {
		if c == '?' {
			return url + "&" + params
		}
	}
	return url + "?" + params
}
