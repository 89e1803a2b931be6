package core

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// With no hooks registered, the runner's event sites cost a nil check: no
// event is built and nothing is allocated.
func TestNoHooksCostNoAllocation(t *testing.T) {
	if h := newHookSet([]Plugin{NewPlugin("empty", Hooks{})}, Hooks{}, slog.Default()); h != nil {
		t.Fatalf("hooks without functions gave a hook set %+v, want nil", h)
	}
	w := &Worker{id: "pool-test"}
	r := &runner{w: w, buffer: []buffered{{job: &Job{ID: 2}, at: time.Now()}}}
	job := &Job{ID: 1, Attempts: 1, MaxAttempts: 1}
	res := result{a: &activeJob{job: job}, dur: time.Millisecond}
	jobs := []*Job{job}
	ctx := context.Background()
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		w.emitStarted(ctx, false)
		r.emitFetched(ctx, 1, jobs)
		r.emitOutcome(res, outcomeComplete, "")
		r.emitOutcome(res, outcomeFail, "failed")
		r.emitLocalQueue(LocalQueueEvent{Change: RefetchDelayStarted, Delay: time.Second})
		r.emitExpiring(now, 0)
		r.emitReleasing()
		r.emitShutdown(ctx, nil)
		w.emitStopped(ctx, nil)
	})
	if allocs != 0 {
		t.Fatalf("event sites allocated %v times per run without hooks, want 0", allocs)
	}
}
