package bundriver_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// Order is the application's own table.
type Order struct {
	bun.BaseModel `bun:"table:orders"`
	ID            int64  `bun:"id,pk"`
	Item          string `bun:"item"`
}

// ShipOrder is the payload of the "ship_order" task.
type ShipOrder struct {
	OrderID int64 `json:"order_id"`
}

func (ShipOrder) TaskIdentifier() string { return "ship_order" }

// Add a job in the same bun.Tx as your own insert, then run it.
func Example() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dbURL))), pgdialect.New())
	defer db.Close()
	d := bundriver.New(db)

	utils, err := core.NewUtils(d, core.UtilsOptions{Schema: "bun_example"})
	if err != nil {
		log.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Order)(nil)).Exec(ctx); err != nil {
		log.Fatal(err)
	}

	// The order and its job commit together, or not at all.
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		order := &Order{ID: 42, Item: "teapot"}
		if _, err := tx.NewInsert().Model(order).Exec(ctx); err != nil {
			return err
		}
		_, err := utils.WithTx(bundriver.Tx(tx)).AddJob(ctx, ShipOrder{OrderID: order.ID}, &core.JobSpec{Flags: []string{"fragile"}})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: d,
		Schema:   "bun_example",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The fetch uses the jsonb operator ?|, which bun's formatter
		// would have taken for a placeholder.
		ForbiddenFlags: []string{"paused"},
		Tasks: []core.Task{
			core.NewTask(func(ctx context.Context, job *core.Job, p ShipOrder) error {
				var item string
				if err := db.NewSelect().Model((*Order)(nil)).Column("item").Where("id = ?", p.OrderID).Scan(ctx, &item); err != nil {
					return err
				}
				fmt.Printf("shipping order %d (%s), flags %v\n", p.OrderID, item, job.Flags)
				return nil
			}),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := worker.RunOnce(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// shipping order 42 (teapot), flags [fragile]
}

// Open makes the bun.DB itself, on bun's pgdriver, and Close closes it:
// the same lines as with pgxdriver.Open or pqdriver.Open.
func ExampleOpen() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	d, err := bundriver.Open(ctx, dbURL)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()

	n, err := d.Listen(ctx, "bun_example")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := d.Exec(ctx, `select pg_notify('bun_example', $1)`, "hello"); err != nil {
		log.Fatal(err)
	}
	msg, err := n.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// d.DB() is the *bun.DB, for the application's own queries.
	var one int
	if err := d.DB().NewSelect().ColumnExpr("1").Scan(ctx, &one); err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Channel, msg.Payload, one)
	// Output:
	// bun_example hello 1
}
