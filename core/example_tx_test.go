package core_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
)

// Invoice is the payload of the "send_invoice" task.
type Invoice struct {
	OrderID int64 `json:"order_id"`
}

func (Invoice) TaskIdentifier() string { return "send_invoice" }

// WithTx adds jobs on a transaction the caller holds, so that a job commits
// or rolls back with the caller's own writes: no invoice for an order that
// was never placed. pgxdriver.Tx wraps a pgx.Tx; pqdriver.Tx (*sql.Tx) and
// bundriver.Tx (bun.Tx) do the same with the other drivers, as their
// examples show.
func ExampleUtils_WithTx() {
	ctx := context.Background()
	db, utils, stop := exampleSetup(ctx, "with_tx")
	defer stop()
	pool := db.Pool() // the application's own pgxpool.Pool
	if _, err := pool.Exec(ctx, `create table with_tx.orders (id bigint primary key)`); err != nil {
		log.Fatal(err)
	}

	placeOrder := func(id int64, paid bool) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) // does nothing once committed
		if _, err := tx.Exec(ctx, `insert into with_tx.orders (id) values ($1)`, id); err != nil {
			return err
		}
		if _, err := utils.WithTx(pgxdriver.Tx(tx)).AddJob(ctx, Invoice{OrderID: id}, nil); err != nil {
			return err
		}
		if !paid {
			return errors.New("payment declined") // the order and its job roll back
		}
		return tx.Commit(ctx)
	}
	fmt.Println("order 1:", placeOrder(1, true))
	fmt.Println("order 2:", placeOrder(2, false))

	page, err := utils.ListJobs(ctx, core.ListJobsOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, j := range page.Jobs {
		fmt.Println("job:", j.TaskIdentifier, string(j.Payload))
	}
	// Output:
	// order 1: <nil>
	// order 2: payment declined
	// job: send_invoice {"order_id":1}
}
