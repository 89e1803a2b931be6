package pgxdriver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

func Example() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()

	if err := run(ctx, dbURL); err != nil {
		fmt.Println(err)
	}
	// Output:
	// pgxdriver_example: send_email
	// {"to": "ada@example.com"} [urgent mail] true
}

func run(ctx context.Context, url string) error {
	d, err := pgxdriver.Open(ctx, url)
	if err != nil {
		return err
	}
	defer d.Close()

	// Notifications come on a connection of their own.
	n, err := d.Listen(ctx, "pgxdriver_example")
	if err != nil {
		return err
	}
	defer n.Close(ctx)

	_, err = d.Exec(ctx, `select pg_notify('pgxdriver_example', $1::jsonb->>'task')`,
		json.RawMessage(`{"task": "send_email"}`))
	if err != nil {
		return err
	}
	msg, err := n.Receive(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s\n", msg.Channel, msg.Payload)

	// JSON goes in as json.RawMessage and comes back as raw text in a
	// *[]byte; a pointer to a pointer reads a NULL as nil.
	rows, err := d.Query(ctx, `select $1::json, $2::text[], $3::bigint`,
		json.RawMessage(`{"to": "ada@example.com"}`), []string{"urgent", "mail"}, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		payload []byte
		tags    []string
		attempt *int64
	)
	for rows.Next() {
		if err := rows.Scan(&payload, &tags, &attempt); err != nil {
			return err
		}
		fmt.Println(string(payload), tags, attempt == nil)
	}
	return rows.Close()
}

// Adding work atomically with your own writes: wrap the transaction you
// already hold. You commit or roll back as usual.
func ExampleTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx) // does nothing once committed

	if _, err := tx.Exec(ctx, `insert into orders (id) values ($1)`, 42); err != nil {
		log.Fatal(err)
	}
	// Hand this to gworker (for example core's client) in place of the
	// pool-backed Driver.
	gtx := pgxdriver.Tx(tx)
	if _, err := gtx.Exec(ctx, `select graphile_worker.add_job($1, $2::json)`,
		"ship_order", json.RawMessage(`{"order": 42}`)); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
}

// Behind PgBouncer in transaction pooling mode: no prepared statements on
// the pool, and LISTEN on a direct connection.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(os.Getenv("PGBOUNCER_URL"))
	if err != nil {
		log.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	direct, err := pgx.ParseConfig(os.Getenv("DIRECT_DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	d := pgxdriver.New(pool,
		pgxdriver.ListenConnConfig(direct),
		pgxdriver.OnListenError(func(err error) { log.Printf("gworker listener: %v", err) }),
	)
	defer d.Close() // leaves the pool open: it is yours
	_ = d           // use d as gworker's core.Database
}
