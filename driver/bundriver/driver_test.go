package bundriver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// Open makes a bun.DB on pgdriver that the Driver owns; Close closes it.
func TestOpenOwnsTheDB(t *testing.T) {
	t.Parallel()
	d, err := bundriver.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(t.Context(), `select 1`); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(t, d); err != nil {
		t.Errorf("Listen on an opened Driver: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.DB().PingContext(context.Background()); err == nil {
		t.Error("the bun.DB still works after Close")
	}
}

// New leaves the caller's bun.DB open.
func TestNewLeavesTheDBOpen(t *testing.T) {
	t.Parallel()
	db := newBun(t, openPgdriver(t))
	if err := bundriver.New(db).Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		t.Errorf("the caller's bun.DB after Close: %v", err)
	}
}

// A connection string pgdriver cannot parse is an error, not pgdriver's
// panic.
func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	_, err := bundriver.Open(t.Context(), "mysql://nobody@localhost/x")
	if err == nil || !strings.HasPrefix(err.Error(), "bundriver: ") {
		t.Errorf("Open with a mysql:// URL: %v", err)
	}
}
