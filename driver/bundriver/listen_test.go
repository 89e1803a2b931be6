package bundriver_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	_ "github.com/lib/pq" // a database/sql driver the adapter cannot listen on by itself
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/internal/pgtest"
)

func newBun(t *testing.T, sqldb *sql.DB) *bun.DB {
	t.Helper()
	db := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { db.Close() })
	return db
}

// roundTrip listens on a channel, notifies it and receives the message.
func roundTrip(t *testing.T, d *bundriver.Driver) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	n, err := d.Listen(ctx, "bundriver_test")
	if err != nil {
		return err
	}
	defer n.Close(ctx)
	if _, err := d.Exec(ctx, `select pg_notify('bundriver_test', $1)`, "hi"); err != nil {
		return err
	}
	msg, err := n.Receive(ctx)
	if err != nil {
		return err
	}
	if msg.Payload != "hi" {
		t.Errorf("received %+v", msg)
	}
	return nil
}

func TestListenModes(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	pgd := newBun(t, openPgdriver(t))
	std := newBun(t, openStdlib(t))
	// sql.Open("pg", ...) works too: database/sql gets a connector from
	// pgdriver.
	byName, err := sql.Open("pg", url)
	if err != nil {
		t.Fatal(err)
	}
	named := newBun(t, byName)
	// A database/sql driver whose connection settings the adapter cannot
	// take: lib/pq.
	other, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	onPq := newBun(t, other)

	for _, c := range []struct {
		name        string
		db          *bun.DB
		opts        []bundriver.Option
		unsupported bool   // Listen wraps core.ErrNotificationsUnsupported
		errContains string // Listen fails with this, without wrapping it
	}{
		{name: "pgdriver", db: pgd},
		{name: "stdlib", db: std},
		{name: "pgdriver with ListenDSN (pgx)", db: pgd, opts: []bundriver.Option{bundriver.ListenDSN(url)}},
		{name: "pgdriver opened by name", db: named},
		{name: "PollOnly", db: pgd, opts: []bundriver.Option{bundriver.PollOnly()}, unsupported: true},
		{name: "PollOnly wins over ListenDSN", db: std, opts: []bundriver.Option{bundriver.ListenDSN(url), bundriver.PollOnly()}, unsupported: true},
		{name: "lib/pq without ListenDSN", db: onPq, errContains: "bundriver.ListenDSN"},
		{name: "lib/pq with ListenDSN (pgx)", db: onPq, opts: []bundriver.Option{bundriver.ListenDSN(url)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := roundTrip(t, bundriver.New(c.db, c.opts...))
			switch {
			case c.unsupported:
				if !errors.Is(err, core.ErrNotificationsUnsupported) {
					t.Errorf("Listen: %v, want core.ErrNotificationsUnsupported", err)
				}
			case c.errContains != "":
				if err == nil || !strings.Contains(err.Error(), c.errContains) || errors.Is(err, core.ErrNotificationsUnsupported) {
					t.Errorf("Listen: %v, want an error containing %q", err, c.errContains)
				}
			case err != nil:
				t.Errorf("Listen: %v", err)
			}
		})
	}
}

func TestPgdriverListenerRejectsChannelsItCannotQuote(t *testing.T) {
	t.Parallel()
	d := bundriver.New(newBun(t, openPgdriver(t)))
	if _, err := d.Listen(t.Context(), `a"b`); err == nil || !strings.Contains(err.Error(), "ListenDSN") {
		t.Errorf("Listen on a channel with a double quote: %v", err)
	}
}

// Statements never go through bun's formatter: '?' reaches the server.
func TestQuestionMarksAreNotPlaceholders(t *testing.T) {
	t.Parallel()
	for _, open := range []func(testing.TB) *sql.DB{openPgdriver, openStdlib} {
		d := bundriver.New(newBun(t, open(t)))
		rows, err := d.Query(t.Context(), `select '{"a":1}'::jsonb ? $1, '?'`, "a")
		if err != nil {
			t.Fatal(err)
		}
		var has bool
		var q string
		for rows.Next() {
			if err := rows.Scan(&has, &q); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Close(); err != nil || !has || q != "?" {
			t.Errorf("got %v %q, %v", has, q, err)
		}
	}
}

// A server error keeps pgdriver's type under the adapter's.
func TestErrorUnwrapsToPgdriverError(t *testing.T) {
	t.Parallel()
	d := bundriver.New(newBun(t, openPgdriver(t)))
	_, err := d.Exec(t.Context(), `select 1/0`)
	var be *bundriver.Error
	var pe pgdriver.Error
	if !errors.As(err, &be) || be.SQLState() != "22012" || be.Field('M') != "division by zero" || !errors.As(err, &pe) {
		t.Fatalf("err = %#v", err)
	}
}
