package pqdriver_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// A listener that cannot connect fails Listen instead of retrying for ever
// in the background.
func TestListenFailsWhenTheFirstConnectionFails(t *testing.T) {
	t.Parallel()
	d, err := pqdriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	bad := pqdriver.New(d.DB(), pqdriver.ListenDSN("postgres://nobody@"+addr+"/x?sslmode=disable"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	n, err := bad.Listen(ctx, "c")
	if err == nil {
		n.Close(ctx)
		t.Fatal("Listen on a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "pqdriver: listen") || time.Since(start) > 5*time.Second {
		t.Errorf("Listen on a closed port: %v after %v", err, time.Since(start))
	}
	if _, err := d.Listen(ctx); err == nil {
		t.Error("Listen without channels: no error")
	}
}

// A *sql.DB does not say how it connects, so New needs to be told how to
// LISTEN, or that the worker is to poll alone; without either Listen fails
// with the fix instead of the worker polling without a word.
func TestNewWithoutListenChoiceFailsListenLoudly(t *testing.T) {
	t.Parallel()
	d, err := pqdriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	_, err = pqdriver.New(d.DB()).Listen(t.Context(), "c")
	if err == nil || errors.Is(err, core.ErrNotificationsUnsupported) ||
		!strings.Contains(err.Error(), "pqdriver.ListenDSN") || !strings.Contains(err.Error(), "pqdriver.PollOnly") {
		t.Errorf("Listen on New(db): %v, want an error naming ListenDSN and PollOnly", err)
	}
	_, err = pqdriver.New(d.DB(), pqdriver.PollOnly()).Listen(t.Context(), "c")
	if !errors.Is(err, core.ErrNotificationsUnsupported) {
		t.Errorf("Listen on New(db, PollOnly()): %v, want core.ErrNotificationsUnsupported", err)
	}
	// PollOnly wins over the connection string Open knows.
	o, err := pqdriver.Open(t.Context(), pgtest.URL(t), pqdriver.PollOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Listen(t.Context(), "c"); !errors.Is(err, core.ErrNotificationsUnsupported) {
		t.Errorf("Listen on Open(..., PollOnly()): %v, want core.ErrNotificationsUnsupported", err)
	}
}

// Conn runs core's statements on a connection the caller holds.
func TestConnSharesTheCallersSession(t *testing.T) {
	t.Parallel()
	d, err := pqdriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := d.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want int64
	if err := c.QueryRowContext(t.Context(), `select pg_backend_pid()`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	rows, err := pqdriver.Conn(c).Query(t.Context(), `select pg_backend_pid()::int8, $1::text[]`, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got int64
	var arr []string
	for rows.Next() {
		if err := rows.Scan(&got, &arr); err != nil {
			t.Fatal(err)
		}
	}
	if got != want || len(arr) != 1 {
		t.Errorf("ran in backend %d (%v), want %d", got, arr, want)
	}
}
