package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gworker/gworker/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The floor's samples come from a real server: one notification heard and
// one round trip per sample, and the LISTEN session is not handed back to
// the pool.
func TestFloorSamples(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := pgtest.Pool(t)
	notify, trip, err := floorSamples(ctx, pool, 5, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(notify) != 5 || len(trip) != 5 {
		t.Fatalf("%d notification and %d round-trip samples, want 5 each", len(notify), len(trip))
	}
	for i := range trip {
		// A notification is timed from the commit's answer, so it may
		// come a little before it, never seconds.
		if trip[i] <= 0 || trip[i] > 5000 || notify[i] < -5000 || notify[i] > 5000 {
			t.Errorf("sample %d: notification %v ms, round trip %v ms", i, notify[i], trip[i])
		}
	}
	// The closed session's backend goes away soon after; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var listening int
		if err := pool.QueryRow(ctx, "select count(*) from pg_stat_activity where datname = current_database() and query = 'listen gwbench_floor'").Scan(&listening); err != nil {
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
