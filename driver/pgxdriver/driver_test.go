package pgxdriver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

func TestCallerTx(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			d, pool := newDriver(t, m.mode)
			table := newSchema(t, d) + ".t"
			mustExec(t, d, `create table `+table+` (id bigint primary key, v jsonb)`)

			for _, commit := range []bool{true, false} {
				t.Run(fmt.Sprintf("commit=%v", commit), func(t *testing.T) {
					mustExec(t, d, `truncate `+table)
					callerTx, err := pool.Begin(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					defer callerTx.Rollback(context.Background())
					if _, err := callerTx.Exec(t.Context(), `insert into `+table+` values (1, null)`); err != nil {
						t.Fatal(err)
					}
					tx := pgxdriver.Tx(callerTx)
					if n := mustExec(t, tx, `insert into `+table+` values ($1, $2::jsonb)`, int64(2), json.RawMessage(`{"k":"v"}`)); n != 1 {
						t.Errorf("insert through Tx: %d rows, want 1", n)
					}
					if got := count(t, pool, table); got != 0 {
						t.Errorf("before the caller commits another session sees %d rows, want 0", got)
					}
					if commit {
						err = callerTx.Commit(t.Context())
					} else {
						err = callerTx.Rollback(t.Context())
					}
					if err != nil {
						t.Fatal(err)
					}
					want := int64(0)
					if commit {
						want = 2
					}
					if got := count(t, pool, table); got != want {
						t.Errorf("after the caller finished: %d rows, want %d", got, want)
					}
				})
			}
		})
	}
}

// Conn runs statements on the caller's session: a temporary table, which
// only that session can see, proves it.
func TestConn(t *testing.T) {
	t.Parallel()
	for _, m := range execModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, m.mode)
			c, err := pool.Acquire(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if _, err := c.Exec(t.Context(), `create temporary table scratch (v text[])`); err != nil {
				t.Fatal(err)
			}
			e := pgxdriver.Conn(c)
			if n := mustExec(t, e, `insert into scratch values ($1::text[])`, []string{"x", "y"}); n != 1 {
				t.Errorf("insert: %d rows, want 1", n)
			}
			var got []string
			if err := c.QueryRow(t.Context(), `select v from scratch`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []string{"x", "y"}) {
				t.Errorf("got %q, want [x y]", got)
			}
			// Also a plain *pgx.Conn.
			e = pgxdriver.Conn(c.Conn())
			if n := mustExec(t, e, `delete from scratch`); n != 1 {
				t.Errorf("delete: %d rows, want 1", n)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	d, err := pgxdriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := mustExec(t, d, `select 1`); n != 1 {
		t.Errorf("select 1: %d rows, want 1", n)
	}
	d.Close()
	if _, err := d.Pool().Acquire(t.Context()); err == nil {
		t.Error("Close left the pool it owns open")
	}

	// A server that does not answer fails Open itself.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := pgxdriver.Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
}

func TestNewDoesNotOwnPool(t *testing.T) {
	t.Parallel()
	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.New(pool)
	if d.Pool() != pool {
		t.Error("Pool() is not the pool given to New")
	}
	d.Close()
	if err := pool.Ping(t.Context()); err != nil {
		t.Errorf("Close closed the caller's pool: %v", err)
	}
}
