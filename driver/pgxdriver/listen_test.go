package pgxdriver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The session itself (delivery, reconnects, Close) is internal/pglisten's
// and tested there; these tests cover what the driver chooses for it.

// The listener has a connection of its own: it works with the pool
// exhausted, and ListenConnConfig chooses where it goes.
func TestListenConnection(t *testing.T) {
	t.Parallel()
	admin := pgtest.Pool(t)
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	appName := uniqueName("listener_")
	cfg.RuntimeParams["application_name"] = appName

	pool := newPool(t, pgx.QueryExecModeCacheStatement)
	held := make([]interface{ Release() }, 0, pool.Config().MaxConns)
	for range pool.Config().MaxConns {
		c, err := pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()

	d := pgxdriver.New(pool, pgxdriver.ListenConnConfig(cfg))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	n, err := d.Listen(ctx, uniqueName("c_"))
	if err != nil {
		t.Fatalf("Listen with the pool exhausted: %v", err)
	}
	defer n.Close(context.Background())

	var listeners int
	err = admin.QueryRow(t.Context(),
		`select count(*) from pg_stat_activity where application_name = $1`, appName).Scan(&listeners)
	if err != nil || listeners != 1 {
		t.Errorf("%d connections named %q (%v), want the listener's", listeners, appName, err)
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	d, pool := newDriver(t, pgx.QueryExecModeCacheStatement)
	if _, err := d.Listen(t.Context()); err == nil {
		t.Error("Listen with no channels succeeded")
	}

	cfg, err := pgx.ParseConfig("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	d = pgxdriver.New(pool, pgxdriver.ListenConnConfig(cfg))
	if _, err := d.Listen(t.Context(), "c"); err == nil || errors.Is(err, core.ErrNotificationsUnsupported) {
		t.Errorf("Listen to an unreachable server: %v, want a connection error", err)
	}
}

// Polling alone is a choice the caller makes with PollOnly, and Listen then
// says so in the way core understands.
func TestPollOnly(t *testing.T) {
	t.Parallel()
	_, pool := newDriver(t, pgx.QueryExecModeCacheStatement)
	d := pgxdriver.New(pool, pgxdriver.PollOnly())
	if _, err := d.Listen(t.Context(), "c"); !errors.Is(err, core.ErrNotificationsUnsupported) {
		t.Errorf("Listen with PollOnly: %v, want core.ErrNotificationsUnsupported", err)
	}
}
