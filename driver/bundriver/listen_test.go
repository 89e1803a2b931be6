package bundriver_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

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

	for _, c := range []struct {
		name        string
		db          *bun.DB
		opts        bundriver.Options
		unsupported bool   // Listen wraps core.ErrNotificationsUnsupported
		errContains string // Listen fails with this
	}{
		{name: "auto on pgdriver", db: pgd},
		{name: "auto on stdlib", db: std},
		{name: "auto on pgdriver with ListenDSN (pgx)", db: pgd, opts: bundriver.Options{ListenDSN: url}},
		{name: "pgx on pgdriver without ListenDSN", db: pgd, opts: bundriver.Options{Listen: bundriver.ListenPgx}, unsupported: true},
		{name: "pgdriver on stdlib", db: std, opts: bundriver.Options{Listen: bundriver.ListenPgdriver}, errContains: "needs a bun.DB on pgdriver"},
		{name: "none", db: pgd, opts: bundriver.Options{Listen: bundriver.ListenNone}, unsupported: true},
		{name: "auto on pgdriver opened by name", db: named},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := roundTrip(t, bundriver.NewWithOptions(c.db, c.opts))
			switch {
			case c.unsupported:
				if !errors.Is(err, core.ErrNotificationsUnsupported) {
					t.Errorf("Listen: %v, want core.ErrNotificationsUnsupported", err)
				}
			case c.errContains != "":
				if err == nil || !strings.Contains(err.Error(), c.errContains) {
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
	if _, err := d.Listen(t.Context(), `a"b`); err == nil || !strings.Contains(err.Error(), "ListenPgx") {
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
