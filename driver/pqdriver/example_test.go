package pqdriver_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// ShipOrder is the payload of the "ship_order" task.
type ShipOrder struct {
	OrderID int64 `json:"order_id"`
}

func (ShipOrder) TaskIdentifier() string { return "ship_order" }

// Add a job in the same *sql.Tx as your own write, then run it.
func Example() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	d, err := pqdriver.Open(ctx, dbURL)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	utils, err := core.NewUtils(d, core.UtilsOptions{Schema: "pq_example"})
	if err != nil {
		log.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := d.DB().ExecContext(ctx, `create table orders (id bigint primary key)`); err != nil {
		log.Fatal(err)
	}

	// Your transaction: the order and its job commit together.
	tx, err := d.DB().BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() // does nothing once committed
	if _, err := tx.ExecContext(ctx, `insert into orders (id) values ($1)`, 42); err != nil {
		log.Fatal(err)
	}
	if _, err := utils.WithTx(pqdriver.Tx(tx)).AddJob(ctx, ShipOrder{OrderID: 42}, &core.JobSpec{QueueName: "shipping"}); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	worker, err := core.NewWorker(core.WorkerOptions{
		Database: d,
		Schema:   "pq_example",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tasks: []core.Task{
			core.NewTask(func(ctx context.Context, job *core.Job, p ShipOrder) error {
				fmt.Printf("shipping order %d from queue %q\n", p.OrderID, job.QueueName)
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
	// shipping order 42 from queue "shipping"
}

// Notifications need a connection string: Open's, or ListenDSN's.
func ExampleDriver_Listen() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	d, err := pqdriver.Open(ctx, dbURL)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	n, err := d.Listen(ctx, "pq_example")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := d.Exec(ctx, `select pg_notify('pq_example', $1)`, "hello"); err != nil {
		log.Fatal(err)
	}
	msg, err := n.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Channel, msg.Payload)

	// Over a *sql.DB of your own, New needs the connection string to
	// LISTEN with (ListenDSN, see New's example), or PollOnly to choose
	// polling alone.
	_, err = pqdriver.New(d.DB(), pqdriver.PollOnly()).Listen(ctx, "pq_example")
	fmt.Println(errors.Is(err, core.ErrNotificationsUnsupported))
	// Output:
	// pq_example hello
	// true
}

// Over a *sql.DB the application opened itself: New leaves it the
// application's, and ListenDSN says where to LISTEN, since a *sql.DB does
// not tell.
func ExampleNew() {
	ctx := context.Background()
	dsn, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	db, err := sql.Open("postgres", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	d := pqdriver.New(db, pqdriver.ListenDSN(dsn))
	defer d.Close() // leaves db open: it is yours

	n, err := d.Listen(ctx, "pq_new_example")
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(ctx)
	if _, err := db.ExecContext(ctx, `select pg_notify('pq_new_example', 'hello')`); err != nil {
		log.Fatal(err)
	}
	msg, err := n.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Channel, msg.Payload)
	// Output:
	// pq_new_example hello
}
