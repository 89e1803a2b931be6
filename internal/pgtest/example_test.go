package pgtest_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/internal/pgtest"
)

// Start gives a program other than a test (an example, a benchmark, the
// demo) a server of its own.
func Example() {
	ctx := context.Background()
	srv, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()

	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close(ctx)

	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(one)
	// Output: 1
}
