package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cFloor is the contender name of the latency floor: what any worker
// listening on this server needs at least between an add's commit and a
// handler's first line, measured without a worker.
const cFloor = "floor"

// The latency floor's metrics, taken with the split's idle gaps: a
// notification's way from a commit to a listening connection, and one
// round trip of a trivial statement on a pooled connection left idle.
var (
	metricFloorNotify = func(p float64) metric {
		return metric{name: fmt.Sprintf("idle latency floor p%.0f, commit → LISTEN connection hears it", p), unit: "ms"}
	}
	metricFloorTrip = func(p float64) metric {
		return metric{name: fmt.Sprintf("idle latency floor p%.0f, one round trip (select 1) after the gap", p), unit: "ms"}
	}
)

// latencyFloor samples, splitSamples times each and spaced like the split,
// the two legs every notified worker pays after an add commits: hearing
// the notification (a NOTIFY committed on one connection, received on a
// LISTEN connection of this process; measured from the commit's answer,
// like the split, so it can be negative) and one round trip (the least a
// fetch costs). The worker's share minus these is its own work.
func (b *bench) latencyFloor(ctx context.Context) (string, error) {
	fail := func(err error) (string, error) {
		b.res.fail(metricFloorNotify(50), cFloor, err)
		return "", err
	}
	notify, trip, err := floorSamples(ctx, b.db.pool, b.cfg.splitSamples, b.cfg.splitGap)
	if err != nil {
		return fail(err)
	}
	for _, p := range splitPercentiles {
		b.res.add(metricFloorNotify(p), cFloor, percentile(notify, p))
	}
	for _, p := range splitPercentiles {
		b.res.add(metricFloorTrip(p), cFloor, percentile(trip, p))
	}
	return fmt.Sprintf("notification p50 %.3f ms, p99 %.3f ms; round trip p50 %.3f ms, p99 %.3f ms",
		percentile(notify, 50), percentile(notify, 99), percentile(trip, 50), percentile(trip, 99)), nil
}

// floorSamples returns n notification delays and n round trips, in
// milliseconds, each taken after an idle gap of gap to 2×gap.
func floorSamples(ctx context.Context, pool *pgxpool.Pool, n int, gap time.Duration) (notify, trip []float64, err error) {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The LISTEN session must not go back to the pool.
	listen := pooled.Hijack()
	defer listen.Close(context.WithoutCancel(ctx))
	if _, err := listen.Exec(ctx, "listen gwbench_floor"); err != nil {
		return nil, nil, err
	}
	idle := func() error {
		t := time.NewTimer(gap + rand.N(gap+1))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	heard := make(chan time.Time, 1)
	lctx, stop := context.WithCancel(ctx)
	// The listening goroutine must be gone before the connection closes
	// (deferred above, so it runs after this).
	defer func() {
		stop()
		for range heard {
		}
	}()
	go func() {
		defer close(heard)
		for {
			if _, err := listen.WaitForNotification(lctx); err != nil {
				return
			}
			heard <- time.Now()
		}
	}()
	for i := 0; i < n; i++ {
		if err := idle(); err != nil {
			return nil, nil, err
		}
		if _, err := pool.Exec(ctx, "select pg_notify('gwbench_floor', '')"); err != nil {
			return nil, nil, err
		}
		committed := time.Now()
		select {
		case at, ok := <-heard:
			if !ok {
				return nil, nil, errors.New("the LISTEN connection stopped")
			}
			notify = append(notify, float64(at.Sub(committed).Microseconds())/1000)
		case <-time.After(5 * time.Second):
			return nil, nil, errors.New("no notification within 5 s")
		}
		if err := idle(); err != nil {
			return nil, nil, err
		}
		begin := time.Now()
		if _, err := pool.Exec(ctx, "select 1"); err != nil {
			return nil, nil, err
		}
		trip = append(trip, float64(time.Since(begin).Microseconds())/1000)
	}
	return notify, trip, nil
}
