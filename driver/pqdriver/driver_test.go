package pqdriver_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

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
	bad := pqdriver.NewWithOptions(d.DB(), pqdriver.Options{ListenDSN: "postgres://nobody@" + addr + "/x?sslmode=disable"})
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
