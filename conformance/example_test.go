package conformance_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/gworker/gworker/conformance"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The test that proves a driver: here pgxdriver's, against the database in
// $DATABASE_URL. Put it in a _test.go file of your driver and run go test
// -race.
func ExampleRun() {
	testConformance := func(t *testing.T) {
		url := os.Getenv("DATABASE_URL")
		conformance.Run(t, conformance.Harness{
			NewDatabase: func(t testing.TB) core.Database {
				d, err := pgxdriver.Open(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				return d
			},
			BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
				tx, err := db.(*pgxdriver.Driver).Pool().Begin(ctx)
				if err != nil {
					return conformance.CallerTx{}, err
				}
				return conformance.CallerTx{Executor: pgxdriver.Tx(tx), Commit: tx.Commit, Rollback: tx.Rollback}, nil
			},
		})
	}
	_ = testConformance
}

// The harness at work: BeginCallerTx opens a transaction the way an
// application does, and the suite adds jobs through the driver's wrapper of
// it, expecting them to vanish on rollback and appear on commit.
func Example_callerTransaction() {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	db, err := pgxdriver.Open(ctx, srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	h := conformance.Harness{
		BeginCallerTx: func(ctx context.Context, db core.Database) (conformance.CallerTx, error) {
			tx, err := db.(*pgxdriver.Driver).Pool().Begin(ctx)
			if err != nil {
				return conformance.CallerTx{}, err
			}
			return conformance.CallerTx{Executor: pgxdriver.Tx(tx), Commit: tx.Commit, Rollback: tx.Rollback}, nil
		},
	}

	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: "conformance_example"})
	if err != nil {
		log.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := h.BeginCallerTx(ctx, db)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := utils.WithTx(tx.Executor).AddRawJob(ctx, "send_invoice", map[string]int{"invoice": 7}, nil); err != nil {
			log.Fatal(err)
		}
		end := tx.Rollback
		if commit {
			end = tx.Commit
		}
		if err := end(ctx); err != nil {
			log.Fatal(err)
		}
		rows, err := db.Query(ctx, `select count(*) from conformance_example.jobs`)
		if err != nil {
			log.Fatal(err)
		}
		var n int64
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				log.Fatal(err)
			}
		}
		rows.Close()
		fmt.Printf("committed %v: %d job(s)\n", commit, n)
	}
	// Output:
	// committed false: 0 job(s)
	// committed true: 1 job(s)
}
