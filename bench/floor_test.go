package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/internal/pgtest"
)

// The floor's samples come from a real server: one notification heard and
// one round trip per sample, and the LISTEN session is not handed back to
// the pool.
func TestFloorSamples(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	pool, err := pgxpool.New(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	notify, trip, err := floorSamples(ctx, pool, 5, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(notify) != 5 || len(trip) != 5 {
		t.Fatalf("%d notification and %d round-trip samples, want 5 each", len(notify), len(trip))
	}
	for i, ms := range trip {
		if ms <= 0 || ms > 5000 {
			t.Errorf("round trip %d: %v ms", i, ms)
		}
	}
	// The closed session's backend goes away soon after; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var listening int
		if err := pool.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'listen gwbench_floor'").Scan(&listening); err != nil {
			t.Fatal(err)
		}
		if listening == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still show the LISTEN 10 s after the samples: the listening connection was not closed", listening)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
